// 周期任务: birthday, wake-up, holiday and member-day sends, their next runs, pause / resume,
// and "who would get it on this date".
(function () {
  "use strict";
  const { t, dateTime } = window.QP.i18n;
  const api = window.QP.api;

  window.QP.pages.schedules = {
    data() {
      return { schedules: [], loadError: "", selected: "", date: new Date().toISOString().slice(0, 10),
               preview: null, previewError: "", definition: "", errors: {}, notice: "" };
    },
    mounted() { this.load(); },
    methods: {
      t, dateTime,
      triggerName(row) { return t("trg_" + row.trigger); },
      async load() {
        try { this.schedules = (await api.get("/v1/schedules")).schedules; this.loadError = ""; }
        catch (exc) { this.loadError = exc.status === 404 || exc.status === 405 ? t("not_available") : exc.message; }
      },
      async act(row, action) {
        try { await api.post(`/v1/schedules/${row.id}/${action}`, {}); await this.load(); }
        catch (exc) { ElementPlus.ElMessage.error(exc.message); }
      },
      async runPreview() {
        this.previewError = ""; this.preview = null;
        try { this.preview = await api.get(`/v1/schedules/${encodeURIComponent(this.selected)}/preview?date=${this.date}`); }
        catch (exc) { this.previewError = exc.message; }
      },
      async create() {
        this.errors = {}; this.notice = "";
        let body;
        try { body = JSON.parse(this.definition); } catch (exc) { this.errors = { definition: String(exc.message) }; return; }
        try { const made = await api.post("/v1/schedules", body); this.notice = made.id || "OK"; await this.load(); }
        catch (exc) { this.errors = { definition: (exc.field ? exc.field + ": " : "") + exc.message }; }
      },
      reasons(preview) {
        return ["in_data", "triggered", "filtered_out", "already_served", "would_send"]
          .map((key) => ({ reason: t("sch_" + key), count: preview[key] }));
      },
    },
    template: `
      <h1>{{ t('nav_schedules') }}</h1>
      <section class="qp-card" aria-labelledby="sch-list">
        <h2 id="sch-list">{{ t('sch_list') }} <el-button text @click="load">{{ t('refresh') }}</el-button></h2>
        <el-alert v-if="loadError" type="warning" :title="loadError" :closable="false" data-test="load-error" />
        <el-table :data="schedules" :empty-text="t('none')" data-test="schedule-table">
          <el-table-column prop="id" label="ID" min-width="100" />
          <el-table-column prop="name" :label="t('name')" min-width="120" />
          <el-table-column :label="t('sch_trigger')" width="120"><template #default="{ row }">{{ triggerName(row) }}</template></el-table-column>
          <el-table-column :label="t('sch_next')" min-width="150"><template #default="{ row }">{{ row.next_runs.length ? dateTime(row.next_runs[0]) : '—' }}</template></el-table-column>
          <el-table-column :label="t('status')" width="100"><template #default="{ row }">{{ row.paused ? t('st_paused') : t('st_running') }}</template></el-table-column>
          <el-table-column :label="t('actions')" width="120"><template #default="{ row }">
            <el-button size="small" v-if="!row.paused" @click="act(row, 'pause')">{{ t('pause') }}</el-button>
            <el-button size="small" v-else type="primary" @click="act(row, 'resume')">{{ t('resume') }}</el-button>
          </template></el-table-column>
        </el-table>
      </section>
      <div class="qp-columns">
        <section class="qp-card" aria-labelledby="sch-preview">
          <h2 id="sch-preview">{{ t('sch_preview') }}</h2>
          <el-form label-position="top" @submit.prevent="runPreview">
            <el-form-item label="ID" for="sch-id">
              <el-select id="sch-id" v-model="selected" aria-label="ID">
                <el-option v-for="s in schedules" :key="s.id" :value="s.id" :label="s.id + ' · ' + s.name" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('sch_preview_date')" for="sch-date">
              <el-date-picker id="sch-date" v-model="date" type="date" value-format="YYYY-MM-DD" :aria-label="t('sch_preview_date')" />
            </el-form-item>
            <el-button type="primary" native-type="submit" :disabled="!selected">{{ t('cmp_preview') }}</el-button>
          </el-form>
          <el-alert v-if="previewError" type="error" :title="previewError" :closable="false" />
          <template v-if="preview">
            <p class="qp-count" data-test="would-send">{{ preview.would_send }}</p>
            <el-table :data="reasons(preview)" size="small">
              <el-table-column prop="reason" :label="t('sch_reason')" /><el-table-column prop="count" :label="t('count')" />
            </el-table>
          </template>
        </section>
        <section class="qp-card" aria-labelledby="sch-new">
          <h2 id="sch-new">JSON</h2>
          <el-form label-position="top" @submit.prevent="create">
            <el-form-item label="JSON" :error="errors.definition" for="sch-definition">
              <el-input id="sch-definition" v-model="definition" type="textarea" :rows="8"
                        placeholder='{"id": "bday", "name": "生日券", "trigger": {"type": "birthday"}, ...}' />
            </el-form-item>
            <el-alert v-if="notice" type="success" :title="notice" :closable="false" />
            <el-button type="primary" native-type="submit" :disabled="!definition">{{ t('create') }}</el-button>
          </el-form>
        </section>
      </div>`,
  };
})();
