// 营销活动: the launch wizard (audience, coupon, channels and content with a live preview, rules)
// and the list with live progress and pause / resume / cancel.
(function () {
  "use strict";
  const { t, yuan, toFen, dateTime } = window.QP.i18n;
  const api = window.QP.api;
  const CHANNELS = ["wechat", "wechat_mass", "sms", "alipay", "alipay_cash"];
  // the approved provider templates the preview fills (channels/content.py defaults)
  const SMS_TEXT = "${name}您好，您的${coupon}已到账，${expiry}前到${store}使用有效。回T退订";
  const SMS_SIGNATURE = "券派";
  const WECHAT_KEYWORDS = [["thing1", "coupon"], ["character_string2", "code"], ["time3", "expiry"], ["thing4", "name"]];
  const STEP_OF_FIELD = { name: 0, audience: 0, coupon: 1, channels: 2, content: 2,
                          holdout_permille: 3, start_at: 3, budget: 3, frequency_cap: 3, send_rate_per_s: 3 };

  const LIST_MAX = 30;
  const FINAL = ["completed", "completed_with_failures", "cancelled"];

  // GET /v1/campaigns/{id} -> the list's columns (sums over channels)
  function counts(status) {
    const sum = (key) => Object.values(status.channels || {}).reduce((n, c) => n + (c[key] || 0), 0);
    return { status: status.status, total_members: status.total_members, processed: status.processed,
             counts: { planned: sum("planned"), issued: status.issued, sent: sum("sent"),
                       delivered: sum("delivered"), failed: sum("failed"), in_doubt: sum("in_doubt"),
                       held_out: status.held_out, deferred: Object.keys(status.deferred || {}).length } };
  }

  function blank() {
    return { name: "", snapshot: "", coupon_mode: "template", template_id: "", threshold: "100",
             discount: "15", valid_days: 30, channels: ["wechat", "sms"], store: "", link: "",
             holdout_permille: 50, start_at: null, max_coupons: "", max_cost: "",
             cap_on: false, cap_days: 3 };
  }

  // SMS billing: 70 characters in one message, 67 a part once it is longer
  function smsParts(text) {
    const n = [...text].length;
    return n <= 70 ? 1 : Math.ceil(n / 67);
  }

  window.QP.pages.campaigns = {
    data() {
      return { step: 0, form: blank(), errors: {}, busy: false, notice: "", snapshots: [],
               templates: [], campaigns: [], loadError: "", poll: null };
    },
    computed: {
      tz() { return window.QP.i18n.state.timezone; },
      channelOptions() { return CHANNELS.map((c) => ({ value: c, label: t("ch_" + c) })); },
      template() { return this.templates.find((x) => x.template_id === this.form.template_id); },
      sample() {
        const f = this.form;
        const expiry = new Date(Date.now() + (Number(f.valid_days) || 30) * 86400000 - 86400000);
        const title = this.form.coupon_mode === "template"
          ? (this.template ? this.template.name : "优惠券")
          : `满${f.threshold}减${f.discount}券`;
        return { name: "张三", coupon: title, code: "QP8X2K9M4T", value: `${f.discount}元`,
                 expiry: expiry.toISOString().slice(0, 10), store: f.store || "全部门店", link: f.link };
      },
      smsPreview() {
        const body = SMS_TEXT.replace(/\$\{(\w+)\}/g, (_, v) => this.sample[v] || "");
        return `【${SMS_SIGNATURE}】${body}`;
      },
      smsInfo() {
        return t("cmp_sms_len", { chars: [...this.smsPreview].length, segments: smsParts(this.smsPreview) });
      },
      wechatPreview() { return WECHAT_KEYWORDS.map(([kw, v]) => `${kw}: ${this.sample[v]}`).join("\n"); },
    },
    mounted() { this.loadChoices(); this.load(); this.poll = setInterval(() => this.load(), 2000); },
    beforeUnmount() { clearInterval(this.poll); },
    methods: {
      t, yuan, dateTime,
      statusName(s) { return t("st_" + s); },
      async loadChoices() {
        try { this.templates = (await api.get("/v1/templates")).templates; } catch (exc) { this.templates = []; }
        try { this.snapshots = (await api.get("/v1/segments/snapshots")).snapshots; } catch (exc) { this.snapshots = []; }
      },
      async load() {
        let listed;
        try { listed = (await api.get("/v1/campaigns")).campaigns; this.loadError = ""; }
        catch (exc) { this.loadError = exc.message; return; }
        // per-channel counts come with each campaign's status; finished ones are read once
        const known = Object.fromEntries(this.campaigns.map((c) => [c.campaign_id, c]));
        this.campaigns = await Promise.all(listed.slice(0, LIST_MAX).map(async (row) => {
          const old = known[row.campaign_id];
          if (old && old.status === row.status && FINAL.includes(row.status)) return old;
          try { return { ...row, ...counts(await api.get(`/v1/campaigns/${row.campaign_id}`)) }; }
          catch (exc) { return row; }
        }));
      },
      definition() {
        const f = this.form;
        const out = { name: f.name, audience: { snapshot: f.snapshot }, channels: f.channels,
                      holdout_permille: Number(f.holdout_permille) };
        if (f.coupon_mode === "template") {
          out.coupon = { template_id: f.template_id };
        } else {
          const threshold = toFen(f.threshold), discount = toFen(f.discount);
          if (Number.isNaN(threshold) || threshold === null) throw { field: "coupon.threshold_fen", message: "金额格式：元" };
          if (Number.isNaN(discount) || discount === null) throw { field: "coupon.discount_fen", message: "金额格式：元" };
          out.coupon = { threshold_fen: threshold, discount_fen: discount, valid_days: Number(f.valid_days) };
          const budget = {};
          if (f.max_coupons !== "") budget.max_coupons = Number(f.max_coupons);
          const cost = toFen(f.max_cost);
          if (Number.isNaN(cost)) throw { field: "budget.max_cost_fen", message: "金额格式：元" };
          if (cost !== null) budget.max_cost_fen = cost;
          if (Object.keys(budget).length) out.budget = budget;
        }
        const content = {};
        if (f.store) content.store = f.store;
        if (f.link) content.link = f.link;
        if (Object.keys(content).length) out.content = content;
        if (f.start_at) out.start_at = window.QP.i18n.zonedIso(f.start_at);
        if (f.cap_on) out.frequency_cap = { messages: 1, days: Number(f.cap_days) };
        return out;
      },
      showError(field, message) {
        this.errors = { [field || "_"]: message };
        const top = (field || "").split(/[.[]/)[0];
        if (top in STEP_OF_FIELD) this.step = STEP_OF_FIELD[top];
      },
      async launch() {
        this.errors = {}; this.notice = "";
        let body;
        try { body = this.definition(); } catch (bad) { this.showError(bad.field, bad.message); return; }
        this.busy = true;
        try {
          const made = await api.post("/v1/campaigns", body);
          const id = made.campaign_id || made.id;
          if (made.status === "draft") await api.post(`/v1/campaigns/${id}/run`, {});
          this.notice = t("cmp_launched", { id });
          this.form = blank(); this.step = 0;
          await this.load();
        } catch (exc) {
          this.showError(exc.field, exc.message);
        } finally { this.busy = false; }
      },
      async act(row, action) {
        if (action === "cancel") {
          try { await ElementPlus.ElMessageBox.confirm(t("confirm_cancel"), t("cancel_campaign"), { type: "warning" }); }
          catch (exc) { return; }
        }
        try { await api.post(`/v1/campaigns/${row.campaign_id}/${action}`, {}); await this.load(); }
        catch (exc) { ElementPlus.ElMessage.error(exc.message); }
      },
      count(row, key) {
        const c = row.counts || row;
        return c[key] === undefined ? "—" : c[key];
      },
      percent(row) {
        if (FINAL.includes(row.status) && row.status !== "cancelled") return 100;
        if (!row.total_members) return 0;
        return Math.min(100, Math.round((row.processed || 0) * 100 / row.total_members));
      },
    },
    template: `
      <h1>{{ t('nav_campaigns') }}</h1>
      <section class="qp-card" aria-labelledby="cmp-new">
        <h2 id="cmp-new">{{ t('cmp_new') }}</h2>
        <el-steps :active="step" finish-status="success" simple>
          <el-step :title="t('cmp_step_audience')" /><el-step :title="t('cmp_step_coupon')" />
          <el-step :title="t('cmp_step_channels')" /><el-step :title="t('cmp_step_rules')" />
          <el-step :title="t('cmp_step_review')" />
        </el-steps>
        <el-form label-position="top" @submit.prevent="step < 4 ? step++ : launch()" data-test="campaign-form" class="qp-wizard">
          <div v-show="step === 0">
            <el-form-item :label="t('cmp_name')" :error="errors.name" for="cmp-name">
              <el-input id="cmp-name" v-model="form.name" maxlength="64" />
            </el-form-item>
            <el-form-item :label="t('cmp_snapshot')" :error="errors.audience || errors['audience.snapshot']" for="cmp-snapshot">
              <el-select id="cmp-snapshot" v-model="form.snapshot" filterable :aria-label="t('cmp_snapshot')">
                <el-option v-for="s in snapshots" :key="s.snapshot" :value="s.snapshot"
                           :label="s.name + ' · ' + s.count + ' · ' + s.snapshot.split('/').pop()" />
              </el-select>
            </el-form-item>
          </div>
          <div v-show="step === 1">
            <el-form-item :label="t('cmp_step_coupon')">
              <el-radio-group v-model="form.coupon_mode" :aria-label="t('cmp_step_coupon')">
                <el-radio value="template">{{ t('cmp_template') }}</el-radio>
                <el-radio value="threshold">{{ t('kind_threshold') }}</el-radio>
              </el-radio-group>
            </el-form-item>
            <el-form-item v-if="form.coupon_mode === 'template'" :label="t('cmp_template')" :error="errors['coupon.template_id'] || errors.coupon" for="cmp-template">
              <el-select id="cmp-template" v-model="form.template_id" filterable :aria-label="t('cmp_template')">
                <el-option v-for="x in templates" :key="x.template_id" :value="x.template_id" :label="x.template_id + ' · ' + x.name" />
              </el-select>
            </el-form-item>
            <template v-else>
              <el-form-item :label="t('tpl_threshold')" :error="errors['coupon.threshold_fen']" for="cmp-threshold">
                <el-input id="cmp-threshold" v-model="form.threshold" inputmode="decimal" />
              </el-form-item>
              <el-form-item :label="t('tpl_discount')" :error="errors['coupon.discount_fen']" for="cmp-discount">
                <el-input id="cmp-discount" v-model="form.discount" inputmode="decimal" />
              </el-form-item>
              <el-form-item :label="t('tpl_valid_days')" :error="errors['coupon.valid_days']" for="cmp-valid">
                <el-input id="cmp-valid" v-model.number="form.valid_days" type="number" min="1" />
              </el-form-item>
            </template>
          </div>
          <div v-show="step === 2" class="qp-columns">
            <div class="qp-card">
              <el-form-item :label="t('cmp_channels')" :error="errors.channels" for="cmp-channels">
                <el-select id="cmp-channels" v-model="form.channels" multiple :aria-label="t('cmp_channels')">
                  <el-option v-for="c in channelOptions" :key="c.value" :value="c.value" :label="c.label" />
                </el-select>
              </el-form-item>
              <el-form-item :label="t('store_id')" :error="errors['content.store']" for="cmp-store">
                <el-input id="cmp-store" v-model="form.store" maxlength="35" placeholder="全部门店" />
              </el-form-item>
              <el-form-item label="Link" :error="errors['content.link']" for="cmp-link">
                <el-input id="cmp-link" v-model="form.link" maxlength="200" placeholder="pages/coupon/index" />
              </el-form-item>
              <p class="qp-hint">{{ t('cmp_variables') }}</p>
            </div>
            <div class="qp-card" aria-live="polite">
              <h3>{{ t('cmp_preview') }} · {{ t('ch_sms') }}</h3>
              <div class="qp-preview" data-test="sms-preview">{{ smsPreview }}</div>
              <p class="qp-hint" data-test="sms-info">{{ smsInfo }}</p>
              <h3>{{ t('cmp_preview') }} · {{ t('ch_wechat_template') }}</h3>
              <div class="qp-preview" data-test="wechat-preview">{{ wechatPreview }}</div>
            </div>
          </div>
          <div v-show="step === 3">
            <el-form-item :label="t('cmp_holdout')" :error="errors.holdout_permille" for="cmp-holdout">
              <el-input id="cmp-holdout" v-model.number="form.holdout_permille" type="number" min="0" max="500" />
            </el-form-item>
            <el-form-item :label="t('cmp_start')" :error="errors.start_at" for="cmp-start">
              <el-date-picker id="cmp-start" v-model="form.start_at" type="datetime" value-format="YYYY-MM-DDTHH:mm:ss" :aria-label="t('cmp_start')" />
            </el-form-item>
            <template v-if="form.coupon_mode !== 'template'">
              <el-form-item :label="t('cmp_max_coupons')" :error="errors['budget.max_coupons'] || errors.budget" for="cmp-max-coupons">
                <el-input id="cmp-max-coupons" v-model="form.max_coupons" type="number" min="1" />
              </el-form-item>
              <el-form-item :label="t('cmp_max_cost')" :error="errors['budget.max_cost_fen']" for="cmp-max-cost">
                <el-input id="cmp-max-cost" v-model="form.max_cost" inputmode="decimal" />
              </el-form-item>
            </template>
            <el-form-item :error="errors.frequency_cap || errors['frequency_cap.days']">
              <div class="qp-row">
                <el-checkbox v-model="form.cap_on" id="cmp-cap-on">{{ t('cmp_freq') }}</el-checkbox>
                <label for="cmp-cap-days" class="qp-muted">{{ t('days') }}</label>
                <el-input-number id="cmp-cap-days" v-model="form.cap_days" :min="1" :max="90" :disabled="!form.cap_on" :aria-label="t('cmp_freq_days')" />
                <span class="qp-muted">{{ t('cmp_freq_days') }}</span>
              </div>
            </el-form-item>
          </div>
          <div v-show="step === 4">
            <el-descriptions :column="1" border>
              <el-descriptions-item :label="t('cmp_name')">{{ form.name }}</el-descriptions-item>
              <el-descriptions-item :label="t('cmp_snapshot')">{{ form.snapshot }}</el-descriptions-item>
              <el-descriptions-item :label="t('cmp_step_coupon')">{{ form.coupon_mode === 'template' ? form.template_id : sample.coupon }}</el-descriptions-item>
              <el-descriptions-item :label="t('cmp_channels')">{{ form.channels.map((c) => t('ch_' + c)).join(' → ') }}</el-descriptions-item>
              <el-descriptions-item :label="t('cmp_holdout')">{{ form.holdout_permille }}‰</el-descriptions-item>
              <el-descriptions-item :label="t('cmp_start')">{{ form.start_at ? form.start_at.replace('T', ' ') + ' (' + tz + ')' : '—' }}</el-descriptions-item>
            </el-descriptions>
          </div>
          <el-alert v-if="errors._" type="error" :title="errors._" :closable="false" show-icon />
          <el-alert v-if="notice" type="success" :title="notice" :closable="false" show-icon data-test="notice" />
          <div class="qp-row qp-wizard-buttons">
            <el-button v-if="step > 0" @click="step--">{{ t('back') }}</el-button>
            <el-button v-if="step < 4" type="primary" native-type="submit">{{ t('next') }}</el-button>
            <el-button v-else type="primary" native-type="submit" :loading="busy" data-test="launch">{{ t('launch') }}</el-button>
          </div>
        </el-form>
      </section>
      <section class="qp-card" aria-labelledby="cmp-list">
        <h2 id="cmp-list">{{ t('cmp_list') }}</h2>
        <el-alert v-if="loadError" type="warning" :title="loadError" :closable="false" />
        <el-table :data="campaigns" :empty-text="t('none')" data-test="campaign-table" row-key="campaign_id">
          <el-table-column prop="campaign_id" label="ID" min-width="120" />
          <el-table-column prop="name" :label="t('name')" min-width="120" />
          <el-table-column :label="t('status')" width="120"><template #default="{ row }"><span :data-status="row.status" data-test="campaign-status">{{ statusName(row.status) }}</span></template></el-table-column>
          <el-table-column :label="t('cmp_progress')" min-width="140"><template #default="{ row }"><el-progress :percentage="percent(row)" :aria-label="t('cmp_progress')" /></template></el-table-column>
          <el-table-column v-for="k in ['planned', 'issued', 'sent', 'delivered', 'failed', 'in_doubt', 'deferred', 'held_out']" :key="k" :label="t('cmp_' + k)" width="80">
            <template #default="{ row }">{{ count(row, k) }}</template>
          </el-table-column>
          <el-table-column :label="t('actions')" min-width="210" fixed="right">
            <template #default="{ row }">
              <el-button v-if="row.status === 'running' || row.status === 'scheduled'" size="small" @click="act(row, 'pause')">{{ t('pause') }}</el-button>
              <el-button v-if="row.status === 'paused'" size="small" type="primary" @click="act(row, 'resume')">{{ t('resume') }}</el-button>
              <el-button v-if="['running', 'paused', 'scheduled', 'draft'].includes(row.status)" size="small" type="danger" @click="act(row, 'cancel')">{{ t('cancel_campaign') }}</el-button>
            </template>
          </el-table-column>
        </el-table>
      </section>`,
  };
})();
