// 周期任务: birthday, wake-up, holiday and member-day sends, their next runs, pause / resume,
// "who would get it on this date", and a form that makes a new one (JSON for the rest).
(function () {
  "use strict";
  const { t, dateTime, toFen } = window.QP.i18n;
  const api = window.QP.api;
  const TRIGGERS = ["birthday", "wake_up", "holiday", "member_day", "first_purchase_anniversary"];
  const OCCASIONS = ["new_year", "spring_festival", "lantern", "qingming", "labour_day",
                     "dragon_boat", "qixi", "mid_autumn", "double_ninth", "national_day"];
  const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  // /v1 names a field ("trigger.inactive_days", "coupon.discount_fen"); the form shows it there
  const FIELD_OF = { "trigger.days_before": "days_before", "trigger.inactive_days": "inactive_days",
                     "trigger.cooldown_days": "cooldown_days", "trigger.occasions": "occasions",
                     "trigger.weekly": "member_days", "trigger.monthly": "member_days",
                     trigger: "trigger", "coupon.threshold_fen": "threshold",
                     "coupon.discount_fen": "discount", "coupon.valid_days": "valid_days" };

  function emptyForm() {
    return { id: "", name: "", trigger: "birthday", days_before: 0, inactive_days: 60,
             cooldown_days: 30, occasions: [...OCCASIONS], member_mode: "weekly",
             weekly: ["wed"], monthly: "8", send_at: "10:00", threshold: "100", discount: "20",
             valid_days: 7, channels: ["wechat", "sms"], holdout_permille: 50 };
  }

  window.QP.pages.schedules = {
    data() {
      return { schedules: [], loadError: "", selected: "", date: new Date().toISOString().slice(0, 10),
               preview: null, previewError: "", definition: "", errors: {}, notice: "",
               form: emptyForm(), formErrors: {}, formNotice: "", busy: false,
               triggers: TRIGGERS, occasions: OCCASIONS, weekdays: WEEKDAYS };
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
      // the form as a definition (docs/scheduler.md); the audience is the server's member data
      fromForm() {
        const f = this.form;
        const trigger = { type: f.trigger };
        if (["birthday", "first_purchase_anniversary", "holiday"].includes(f.trigger)) {
          trigger.days_before = Number(f.days_before);
        }
        if (f.trigger === "wake_up") {
          trigger.inactive_days = Number(f.inactive_days);
          trigger.cooldown_days = Number(f.cooldown_days);
        }
        if (f.trigger === "holiday") trigger.occasions = f.occasions;
        if (f.trigger === "member_day") {
          if (f.member_mode === "weekly") trigger.weekly = f.weekly;
          else {
            const days = String(f.monthly).split(/[,，、\s]+/).filter(Boolean).map(Number);
            if (!days.length || days.some((d) => !Number.isInteger(d))) {
              throw { field: "trigger.monthly", message: t("sch_monthly_hint") };
            }
            trigger.monthly = days;
          }
        }
        const threshold = toFen(f.threshold), discount = toFen(f.discount);
        if (Number.isNaN(threshold) || threshold === null) throw { field: "coupon.threshold_fen", message: "金额格式：元" };
        if (Number.isNaN(discount) || discount === null) throw { field: "coupon.discount_fen", message: "金额格式：元" };
        return { id: f.id.trim(), name: f.name.trim() || f.id.trim(), trigger, send_at: f.send_at,
                 audience: {}, channels: f.channels, holdout_permille: Number(f.holdout_permille),
                 coupon: { threshold_fen: threshold, discount_fen: discount, valid_days: Number(f.valid_days) } };
      },
      async createFromForm() {
        this.formErrors = {}; this.formNotice = "";
        let body;
        try { body = this.fromForm(); }
        catch (bad) { this.formErrors = { [FIELD_OF[bad.field] || "_"]: bad.message }; return; }
        this.busy = true;
        try {
          const made = await api.post("/v1/schedules", body);
          this.formNotice = t("sch_created", { id: made.id });
          this.form = emptyForm();
          await this.load();
        } catch (exc) {
          const field = exc.field || "";
          const key = FIELD_OF[field] || (["id", "name", "send_at", "channels", "holdout_permille"].includes(field) ? field : "_");
          this.formErrors = { [key]: key === "_" && field ? `${field}: ${exc.message}` : exc.message };
        } finally { this.busy = false; }
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
          <h2 id="sch-new">{{ t('sch_new') }}</h2>
          <el-form label-position="top" @submit.prevent="createFromForm" data-test="schedule-form">
            <el-form-item :label="t('sch_id')" :error="formErrors.id" for="sch-new-id">
              <el-input id="sch-new-id" v-model="form.id" maxlength="40" placeholder="bday" />
            </el-form-item>
            <el-form-item :label="t('name')" :error="formErrors.name" for="sch-new-name">
              <el-input id="sch-new-name" v-model="form.name" maxlength="64" :placeholder="t('trg_' + form.trigger) + '券'" />
            </el-form-item>
            <el-form-item :label="t('sch_trigger')" :error="formErrors.trigger">
              <el-radio-group v-model="form.trigger" :aria-label="t('sch_trigger')">
                <el-radio-button v-for="x in triggers" :key="x" :value="x">{{ t('trg_' + x) }}</el-radio-button>
              </el-radio-group>
            </el-form-item>
            <el-form-item v-if="['birthday', 'first_purchase_anniversary', 'holiday'].includes(form.trigger)"
                          :label="t('sch_days_before')" :error="formErrors.days_before" for="sch-days-before">
              <el-input-number id="sch-days-before" v-model="form.days_before" :min="0" :max="60" />
            </el-form-item>
            <template v-if="form.trigger === 'wake_up'">
              <el-form-item :label="t('sch_inactive_days')" :error="formErrors.inactive_days" for="sch-inactive">
                <el-input-number id="sch-inactive" v-model="form.inactive_days" :min="1" :max="3650" />
              </el-form-item>
              <el-form-item :label="t('sch_cooldown_days')" :error="formErrors.cooldown_days" for="sch-cooldown">
                <el-input-number id="sch-cooldown" v-model="form.cooldown_days" :min="1" :max="3650" />
              </el-form-item>
            </template>
            <el-form-item v-if="form.trigger === 'holiday'" :label="t('sch_occasions')" :error="formErrors.occasions">
              <el-checkbox-group v-model="form.occasions" :aria-label="t('sch_occasions')">
                <el-checkbox v-for="o in occasions" :key="o" :value="o">{{ t('occ_' + o) }}</el-checkbox>
              </el-checkbox-group>
            </el-form-item>
            <template v-if="form.trigger === 'member_day'">
              <el-form-item :label="t('sch_member_days')" :error="formErrors.member_days">
                <el-radio-group v-model="form.member_mode" :aria-label="t('sch_member_days')">
                  <el-radio value="weekly">{{ t('sch_weekly') }}</el-radio>
                  <el-radio value="monthly">{{ t('sch_monthly') }}</el-radio>
                </el-radio-group>
              </el-form-item>
              <el-checkbox-group v-if="form.member_mode === 'weekly'" v-model="form.weekly" :aria-label="t('sch_weekly')">
                <el-checkbox v-for="d in weekdays" :key="d" :value="d">{{ t('wd_' + d) }}</el-checkbox>
              </el-checkbox-group>
              <el-input v-else id="sch-monthly" v-model="form.monthly" :placeholder="t('sch_monthly_hint')" :aria-label="t('sch_monthly')" />
            </template>
            <el-form-item :label="t('sch_send_at')" :error="formErrors.send_at" for="sch-send-at">
              <el-time-select id="sch-send-at" v-model="form.send_at" start="07:00" step="00:30" end="21:00" :aria-label="t('sch_send_at')" />
            </el-form-item>
            <el-form-item :label="t('tpl_threshold')" :error="formErrors.threshold" for="sch-threshold">
              <el-input id="sch-threshold" v-model="form.threshold" inputmode="decimal" />
            </el-form-item>
            <el-form-item :label="t('tpl_discount')" :error="formErrors.discount" for="sch-discount">
              <el-input id="sch-discount" v-model="form.discount" inputmode="decimal" />
            </el-form-item>
            <el-form-item :label="t('tpl_valid_days')" :error="formErrors.valid_days" for="sch-valid">
              <el-input-number id="sch-valid" v-model="form.valid_days" :min="1" :max="3650" />
            </el-form-item>
            <el-form-item :label="t('cmp_channels')" :error="formErrors.channels">
              <el-checkbox-group v-model="form.channels" :aria-label="t('cmp_channels')">
                <el-checkbox value="wechat">{{ t('ch_wechat') }}</el-checkbox>
                <el-checkbox value="sms">{{ t('ch_sms') }}</el-checkbox>
                <el-checkbox value="alipay">{{ t('ch_alipay') }}</el-checkbox>
              </el-checkbox-group>
            </el-form-item>
            <el-form-item :label="t('cmp_holdout')" :error="formErrors.holdout_permille" for="sch-holdout">
              <el-input-number id="sch-holdout" v-model="form.holdout_permille" :min="0" :max="500" />
            </el-form-item>
            <p class="qp-hint">{{ t('sch_audience_hint') }}</p>
            <el-alert v-if="formErrors._" type="error" :title="formErrors._" :closable="false" data-test="form-error" />
            <el-alert v-if="formNotice" type="success" :title="formNotice" :closable="false" data-test="form-notice" />
            <el-button type="primary" native-type="submit" :loading="busy" :disabled="!form.id">{{ t('create') }}</el-button>
          </el-form>
          <el-collapse>
            <el-collapse-item :title="t('sch_json')" name="json">
              <el-form label-position="top" @submit.prevent="create">
                <el-form-item label="JSON" :error="errors.definition" for="sch-definition">
                  <el-input id="sch-definition" v-model="definition" type="textarea" :rows="8"
                            placeholder='{"id": "bday", "name": "生日券", "trigger": {"type": "birthday"}, ...}' />
                </el-form-item>
                <el-alert v-if="notice" type="success" :title="notice" :closable="false" />
                <el-button type="primary" native-type="submit" :disabled="!definition">{{ t('create') }}</el-button>
              </el-form>
            </el-collapse-item>
          </el-collapse>
        </section>
      </div>`,
  };
})();
