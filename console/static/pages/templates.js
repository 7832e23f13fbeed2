// 优惠券: create a template of any kind the catalog supports, and list them with their rules.
(function () {
  "use strict";
  const { t, yuan, toFen } = window.QP.i18n;
  const api = window.QP.api;
  const KINDS = ["threshold", "discount", "cash", "exchange", "count_card", "duration_card", "gift_card"];
  // which inputs each kind shows (the catalog refuses the others' missing fields by name)
  const FIELDS = {
    threshold: ["threshold", "discount", "valid_days"],
    discount: ["threshold", "rate", "cap", "valid_days"],
    cash: ["discount", "valid_days"],
    exchange: ["item_sku", "valid_days"],
    count_card: ["uses", "valid_days"],
    duration_card: ["duration_days", "daily_limit"],
    gift_card: ["face_value", "activation_required", "valid_days"],
  };
  // /v1 field -> form input, so an error shows beside the input it is about
  const ERROR_FIELDS = {
    kind: "kind", name: "name", total_stock: "total_stock", threshold_fen: "threshold",
    discount_fen: "discount", rate_permille: "rate", cap_fen: "cap", item_sku: "item_sku",
    uses: "uses", duration_days: "duration_days", daily_limit: "daily_limit",
    face_value_fen: "face_value", valid_days: "valid_days", per_member_limit: "per_member_limit",
    budget_fen: "budget", activation_required: "activation_required",
  };

  function blank() {
    return { kind: "threshold", name: "", total_stock: 1000, threshold: "", discount: "", rate: "",
             cap: "0", item_sku: "", uses: 10, duration_days: 30, daily_limit: 0, face_value: "",
             activation_required: false, valid_days: 30, per_member_limit: 1, budget: "" };
  }

  function ruleText(tpl) {
    const y = (f) => yuan(f);
    switch (tpl.kind) {
      case "threshold": return `满${y(tpl.threshold_fen)}减${y(tpl.discount_fen)}`;
      case "discount": return `${(tpl.rate_permille / 100).toFixed(1)}折` +
        (tpl.threshold_fen ? `，满${y(tpl.threshold_fen)}` : "") + (tpl.cap_fen ? `，最多减${y(tpl.cap_fen)}` : "");
      case "cash": return `无门槛${y(tpl.discount_fen)}`;
      case "exchange": return `兑换 ${tpl.item_sku}`;
      case "count_card": return `${tpl.uses} 次`;
      case "duration_card": return `${tpl.duration_days} 天` + (tpl.daily_limit ? `，每日 ${tpl.daily_limit} 次` : "");
      case "gift_card": return `面值${y(tpl.face_value_fen)}` + (tpl.activation_required ? "（售出激活）" : "");
      default: return tpl.kind;
    }
  }

  window.QP.pages.templates = {
    data() { return { form: blank(), errors: {}, busy: false, templates: [], loadError: "", notice: "" }; },
    computed: {
      shown() { return new Set(FIELDS[this.form.kind]); },
      kinds() { return KINDS.map((k) => ({ value: k, label: t("kind_" + k) })); },
    },
    mounted() { this.load(); },
    methods: {
      t, yuan, ruleText,
      kindName(kind) { return t("kind_" + kind); },
      async load() {
        try { this.templates = (await api.get("/v1/templates")).templates; this.loadError = ""; }
        catch (exc) { this.loadError = exc.message; }
      },
      body() {
        const f = this.form;
        const out = { kind: f.kind, name: f.name, total_stock: Number(f.total_stock),
                      per_member_limit: Number(f.per_member_limit) };
        const money = (input, field) => {
          const fen = toFen(f[input]);
          if (Number.isNaN(fen)) throw { field: input, message: "金额格式：元，最多两位小数" };
          if (fen !== null) out[field] = fen;
        };
        const shown = this.shown;
        if (shown.has("threshold")) money("threshold", "threshold_fen");
        if (shown.has("discount")) money("discount", "discount_fen");
        if (shown.has("cap")) money("cap", "cap_fen");
        if (shown.has("face_value")) money("face_value", "face_value_fen");
        if (shown.has("rate")) {
          const rate = Math.round(Number(f.rate) * 100);
          if (!Number.isFinite(rate)) throw { field: "rate", message: "折扣填 0.1–9.9" };
          out.rate_permille = rate;
        }
        if (shown.has("item_sku")) out.item_sku = f.item_sku;
        if (shown.has("uses")) out.uses = Number(f.uses);
        if (shown.has("duration_days")) { out.duration_days = Number(f.duration_days); out.daily_limit = Number(f.daily_limit); }
        if (shown.has("activation_required")) out.activation_required = f.activation_required;
        if (shown.has("valid_days")) out.valid_days = Number(f.valid_days);
        money("budget", "budget_fen");
        return out;
      },
      async submit() {
        this.errors = {}; this.notice = "";
        let body;
        try { body = this.body(); } catch (bad) { this.errors = { [bad.field]: bad.message }; return; }
        this.busy = true;
        try {
          const saved = await api.post("/v1/templates", body);
          this.notice = t("tpl_created", { id: saved.template_id });
          this.form = blank();
          await this.load();
        } catch (exc) {
          this.errors = api.fieldErrors(exc, ERROR_FIELDS);
        } finally { this.busy = false; }
      },
    },
    template: `
      <h1>{{ t('nav_templates') }}</h1>
      <div class="qp-columns">
        <section class="qp-card" aria-labelledby="tpl-new">
          <h2 id="tpl-new">{{ t('tpl_new') }}</h2>
          <el-form label-position="top" @submit.prevent="submit" data-test="template-form">
            <el-form-item :label="t('tpl_kind')" :error="errors.kind" for="tpl-kind">
              <el-select id="tpl-kind" v-model="form.kind" :aria-label="t('tpl_kind')">
                <el-option v-for="k in kinds" :key="k.value" :label="k.label" :value="k.value" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('tpl_name')" :error="errors.name" for="tpl-name">
              <el-input id="tpl-name" v-model="form.name" maxlength="64" />
            </el-form-item>
            <el-form-item :label="t('tpl_stock')" :error="errors.total_stock" for="tpl-stock">
              <el-input id="tpl-stock" v-model.number="form.total_stock" type="number" min="1" />
            </el-form-item>
            <el-form-item v-if="shown.has('threshold')" :label="t('tpl_threshold')" :error="errors.threshold" for="tpl-threshold">
              <el-input id="tpl-threshold" v-model="form.threshold" inputmode="decimal" />
            </el-form-item>
            <el-form-item v-if="shown.has('discount')" :label="t('tpl_discount')" :error="errors.discount" for="tpl-discount">
              <el-input id="tpl-discount" v-model="form.discount" inputmode="decimal" />
            </el-form-item>
            <el-form-item v-if="shown.has('rate')" :label="t('tpl_rate')" :error="errors.rate" for="tpl-rate">
              <el-input id="tpl-rate" v-model="form.rate" inputmode="decimal" />
            </el-form-item>
            <el-form-item v-if="shown.has('cap')" :label="t('tpl_cap')" :error="errors.cap" for="tpl-cap">
              <el-input id="tpl-cap" v-model="form.cap" inputmode="decimal" />
            </el-form-item>
            <el-form-item v-if="shown.has('item_sku')" :label="t('tpl_item')" :error="errors.item_sku" for="tpl-item">
              <el-input id="tpl-item" v-model="form.item_sku" />
            </el-form-item>
            <el-form-item v-if="shown.has('uses')" :label="t('tpl_uses')" :error="errors.uses" for="tpl-uses">
              <el-input id="tpl-uses" v-model.number="form.uses" type="number" min="1" />
            </el-form-item>
            <template v-if="shown.has('duration_days')">
              <el-form-item :label="t('tpl_duration')" :error="errors.duration_days" for="tpl-duration">
                <el-input id="tpl-duration" v-model.number="form.duration_days" type="number" min="1" />
              </el-form-item>
              <el-form-item :label="t('tpl_daily')" :error="errors.daily_limit" for="tpl-daily">
                <el-input id="tpl-daily" v-model.number="form.daily_limit" type="number" min="0" />
              </el-form-item>
            </template>
            <el-form-item v-if="shown.has('face_value')" :label="t('tpl_face')" :error="errors.face_value" for="tpl-face">
              <el-input id="tpl-face" v-model="form.face_value" inputmode="decimal" />
            </el-form-item>
            <el-form-item v-if="shown.has('activation_required')" :error="errors.activation_required">
              <el-checkbox v-model="form.activation_required">{{ t('tpl_activation') }}</el-checkbox>
            </el-form-item>
            <el-form-item v-if="shown.has('valid_days')" :label="t('tpl_valid_days')" :error="errors.valid_days" for="tpl-valid">
              <el-input id="tpl-valid" v-model.number="form.valid_days" type="number" min="1" />
            </el-form-item>
            <el-form-item :label="t('tpl_per_member')" :error="errors.per_member_limit" for="tpl-per-member">
              <el-input id="tpl-per-member" v-model.number="form.per_member_limit" type="number" min="1" />
            </el-form-item>
            <el-form-item :label="t('tpl_budget')" :error="errors.budget" for="tpl-budget">
              <el-input id="tpl-budget" v-model="form.budget" inputmode="decimal" />
            </el-form-item>
            <el-alert v-if="errors._" type="error" :title="errors._" :closable="false" show-icon />
            <el-alert v-if="notice" type="success" :title="notice" :closable="false" show-icon data-test="notice" />
            <el-button type="primary" native-type="submit" :loading="busy">{{ t('create') }}</el-button>
          </el-form>
        </section>
        <section class="qp-card qp-wide" aria-labelledby="tpl-list">
          <h2 id="tpl-list">{{ t('tpl_list') }} <el-button text @click="load">{{ t('refresh') }}</el-button></h2>
          <el-alert v-if="loadError" type="error" :title="loadError" :closable="false" />
          <el-table :data="templates" :empty-text="t('none')" data-test="template-table" stripe>
            <el-table-column prop="template_id" :label="t('tpl_id')" width="90" />
            <el-table-column :label="t('tpl_kind')" width="130"><template #default="{ row }">{{ kindName(row.kind) }}</template></el-table-column>
            <el-table-column prop="name" :label="t('tpl_name')" min-width="140" />
            <el-table-column :label="t('tpl_rule')" min-width="160"><template #default="{ row }">{{ ruleText(row) }}</template></el-table-column>
            <el-table-column prop="total_stock" :label="t('tpl_stock')" width="100" />
          </el-table>
        </section>
      </div>`,
  };
})();
