// 会员分群: conditions in the segment condition language, a live count and masked sample as they
// change, the RFM heatmap, and "save as snapshot" (the audience a campaign is launched to).
(function () {
  "use strict";
  const { t, yuan, toFen, dateTime } = window.QP.i18n;
  const api = window.QP.api;
  const charts = window.QP.charts;
  const RFM11 = [
    ["Champions", "冠军客户"], ["Loyal Customers", "忠诚客户"], ["Potential Loyalist", "潜力客户"],
    ["New Customers", "新客户"], ["Promising", "有望客户"], ["Need Attention", "需关注客户"],
    ["About To Sleep", "即将沉睡客户"], ["At Risk", "流失风险客户"], ["Can't Lose Them", "不能失去的客户"],
    ["Hibernating", "沉睡客户"], ["Lost", "流失客户"],
  ];
  const EIGHT = [
    ["Important Value", "重要价值客户"], ["Important Development", "重要发展客户"],
    ["Important Retention", "重要保持客户"], ["Important Win-back", "重要挽留客户"],
    ["General Value", "一般价值客户"], ["General Development", "一般发展客户"],
    ["General Retention", "一般保持客户"], ["General Win-back", "一般挽留客户"],
  ];
  // no condition: every member, buyer or not
  const EVERYONE = { any: [{ has_purchased: true }, { has_purchased: false }] };
  const ZH = Object.fromEntries(RFM11);
  const TIERS = ["normal", "silver", "gold", "platinum"];
  const CHANNELS = ["wechat", "sms", "alipay"];

  function blank() {
    return { rfm_segment: [], eight_class: [], tier: [], points_min: "", spend_min: "",
             dormant_days: "", birthday_within_days: "", reachable: [], purchased: "any" };
  }

  // the form -> one condition of the language in docs/segments.md (all of the filled parts)
  function condition(form) {
    const all = [];
    if (form.rfm_segment.length) all.push({ rfm_segment: form.rfm_segment });
    if (form.eight_class.length) all.push({ eight_class: form.eight_class });
    if (form.tier.length) all.push({ tier: form.tier });
    if (form.points_min !== "" && form.points_min !== null) all.push({ points: { gte: Number(form.points_min) } });
    const spend = toFen(form.spend_min);
    if (spend !== null && !Number.isNaN(spend)) all.push({ total_spend_fen: { gte: spend } });
    if (form.dormant_days) all.push({ dormant_days: Number(form.dormant_days) });
    if (form.birthday_within_days !== "" && form.birthday_within_days !== null) {
      all.push({ birthday_within_days: Number(form.birthday_within_days) });
    }
    if (form.reachable.length) all.push({ any: form.reachable.map((c) => ({ reachable: c })) });
    if (form.purchased !== "any") all.push({ has_purchased: form.purchased === "yes" });
    return all.length ? { all } : EVERYONE;
  }

  // /v1 field path (where.all[3].points.gte) -> form input
  function inputOf(field) {
    const known = ["rfm_segment", "eight_class", "tier", "points", "total_spend_fen", "dormant_days",
                   "birthday_within_days", "reachable", "has_purchased", "name_zh", "name"];
    const hit = known.find((k) => field.includes(k));
    return { points: "points_min", total_spend_fen: "spend_min", has_purchased: "purchased" }[hit] || hit || "_";
  }

  window.QP.pages.segments = {
    data() {
      return { form: blank(), count: null, total: null, sample: [], errors: {}, busy: false,
               snapshotName: "", snapshotId: "", notice: "", snapshots: [], heatError: "", timer: null, seq: 0 };
    },
    computed: {
      zh() { return window.QP.i18n.state.lang === "zh"; },
      rfm11() { return RFM11.map(([en, zh]) => ({ value: en, label: this.zh ? zh : en })); },
      eight() { return EIGHT.map(([en, zh]) => ({ value: en, label: this.zh ? zh : en })); },
      tiers() { return TIERS.map((v) => ({ value: v, label: t("tier_" + v) })); },
      channels() { return CHANNELS.map((v) => ({ value: v, label: t("ch_" + v) })); },
    },
    watch: { form: { deep: true, handler() { this.schedule(); } } },
    mounted() { this.preview(); this.heatmap(); this.loadSnapshots(); },
    beforeUnmount() { clearTimeout(this.timer); charts.dispose(this.$refs.heat); },
    methods: {
      t, yuan, dateTime, ZH,
      schedule() { clearTimeout(this.timer); this.timer = setTimeout(() => this.preview(), 250); },
      async preview() {
        const seq = ++this.seq;
        this.busy = true;
        try {
          const body = await api.post("/v1/segments/preview", { where: condition(this.form), sample: 8 });
          if (seq !== this.seq) return; // an older answer arriving after a newer one
          this.count = body.count; this.total = body.members; this.sample = body.sample || [];
          this.errors = {};
        } catch (exc) {
          if (seq !== this.seq) return;
          this.errors = exc.field ? { [inputOf(exc.field)]: exc.message } : { _: exc.message };
        } finally { if (seq === this.seq) this.busy = false; }
      },
      async heatmap() {
        try {
          const body = await api.get("/v1/segments/rfm-heatmap");
          const labels = (n) => Array.from({ length: n }, (_, i) => String(i + 1));
          const max = Math.max(1, ...body.cells.map((c) => c[2]));
          charts.draw(this.$refs.heat, {
            textStyle: { fontFamily: charts.font },
            tooltip: { formatter: (p) => `R${p.value[0] + 1} F${p.value[1] + 1}: ${p.value[2]}` },
            grid: { left: 50, right: 20, top: 20, bottom: 70 },
            xAxis: { type: "category", data: labels(body.bins), name: "R", splitArea: { show: true } },
            yAxis: { type: "category", data: labels(body.bins), name: "F", splitArea: { show: true } },
            visualMap: { min: 0, max, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
            series: [{ type: "heatmap", data: body.cells.map(([r, f, n]) => [r - 1, f - 1, n]),
                       label: { show: true } }],
          });
          this.heatError = "";
        } catch (exc) { this.heatError = exc.message; }
      },
      async loadSnapshots() {
        try { this.snapshots = (await api.get("/v1/segments/snapshots")).snapshots; } catch (exc) { this.snapshots = []; }
      },
      async save() {
        this.notice = ""; this.errors = {};
        try {
          const body = await api.post("/v1/segments/snapshots", {
            name: this.snapshotId, name_zh: this.snapshotName, where: condition(this.form) });
          this.notice = t("seg_saved", { id: body.snapshot.split("/").pop(), count: body.count });
          await this.loadSnapshots();
        } catch (exc) {
          this.errors = exc.field ? { [inputOf(exc.field)]: exc.message } : { _: exc.message };
        }
      },
      reset() { this.form = blank(); },
    },
    template: `
      <h1>{{ t('nav_segments') }}</h1>
      <div class="qp-columns">
        <section class="qp-card" aria-labelledby="seg-cond">
          <h2 id="seg-cond">{{ t('seg_conditions') }}</h2>
          <el-form label-position="top" @submit.prevent="save" data-test="segment-form">
            <el-form-item :label="t('seg_rfm11')" :error="errors.rfm_segment" for="seg-rfm">
              <el-select id="seg-rfm" v-model="form.rfm_segment" multiple filterable :aria-label="t('seg_rfm11')">
                <el-option v-for="o in rfm11" :key="o.value" :label="o.label" :value="o.value" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('seg_eight')" :error="errors.eight_class" for="seg-eight">
              <el-select id="seg-eight" v-model="form.eight_class" multiple :aria-label="t('seg_eight')">
                <el-option v-for="o in eight" :key="o.value" :label="o.label" :value="o.value" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('seg_tier')" :error="errors.tier" for="seg-tier">
              <el-select id="seg-tier" v-model="form.tier" multiple :aria-label="t('seg_tier')">
                <el-option v-for="o in tiers" :key="o.value" :label="o.label" :value="o.value" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('seg_points_min')" :error="errors.points_min" for="seg-points">
              <el-input id="seg-points" v-model="form.points_min" type="number" min="0" />
            </el-form-item>
            <el-form-item :label="t('seg_spend_min')" :error="errors.spend_min" for="seg-spend">
              <el-input id="seg-spend" v-model="form.spend_min" inputmode="decimal" />
            </el-form-item>
            <el-form-item :label="t('seg_dormant')" :error="errors.dormant_days" for="seg-dormant">
              <el-input id="seg-dormant" v-model="form.dormant_days" type="number" min="1" />
            </el-form-item>
            <el-form-item :label="t('seg_birthday')" :error="errors.birthday_within_days" for="seg-birthday">
              <el-input id="seg-birthday" v-model="form.birthday_within_days" type="number" min="0" max="366" />
            </el-form-item>
            <el-form-item :label="t('seg_reachable')" :error="errors.reachable" for="seg-reach">
              <el-select id="seg-reach" v-model="form.reachable" multiple :aria-label="t('seg_reachable')">
                <el-option v-for="o in channels" :key="o.value" :label="o.label" :value="o.value" />
              </el-select>
            </el-form-item>
            <el-form-item :label="t('seg_purchased')" :error="errors.purchased">
              <el-radio-group v-model="form.purchased" :aria-label="t('seg_purchased')">
                <el-radio value="any">{{ t('seg_any') }}</el-radio>
                <el-radio value="yes">{{ t('seg_bought') }}</el-radio>
                <el-radio value="no">{{ t('seg_never') }}</el-radio>
              </el-radio-group>
            </el-form-item>
            <el-form-item :label="t('seg_snapshot_id')" :error="errors.name" for="seg-id">
              <el-input id="seg-id" v-model="snapshotId" maxlength="64" placeholder="gold-members" />
            </el-form-item>
            <el-form-item :label="t('seg_snapshot_name')" :error="errors.name_zh" for="seg-name">
              <el-input id="seg-name" v-model="snapshotName" maxlength="64" />
            </el-form-item>
            <el-alert v-if="errors._" type="error" :title="errors._" :closable="false" show-icon />
            <el-alert v-if="notice" type="success" :title="notice" :closable="false" show-icon data-test="notice" />
            <div class="qp-row">
              <el-button type="primary" native-type="submit" :disabled="!snapshotId">{{ t('seg_save') }}</el-button>
              <el-button @click="reset">{{ t('cancel') }}</el-button>
            </div>
          </el-form>
        </section>
        <section class="qp-card qp-wide" aria-labelledby="seg-count-title">
          <h2 id="seg-count-title">{{ t('seg_count') }}</h2>
          <div aria-live="polite">
            <span class="qp-count" data-test="segment-count">{{ count === null ? '…' : count.toLocaleString() }}</span>
            <span class="qp-muted qp-of" v-if="total !== null">{{ t('seg_of_total', { total: total.toLocaleString() }) }}</span>
          </div>
          <h3>{{ t('seg_sample') }}</h3>
          <el-table :data="sample" :empty-text="t('none')" size="small" data-test="segment-sample">
            <el-table-column prop="member_id" :label="t('seg_member')" min-width="100" />
            <el-table-column :label="t('seg_tier')" width="80"><template #default="{ row }">{{ row.tier ? t('tier_' + row.tier) : '—' }}</template></el-table-column>
            <el-table-column :label="t('seg_segment')" min-width="120"><template #default="{ row }">{{ zh ? (ZH[row.rfm_segment] || row.rfm_segment || '—') : (row.rfm_segment || '—') }}</template></el-table-column>
            <el-table-column prop="recency_days" :label="t('seg_recency')" width="110" />
            <el-table-column prop="frequency" :label="t('seg_frequency')" width="90" />
            <el-table-column :label="t('seg_spend')" width="120"><template #default="{ row }">{{ yuan(row.monetary_total_fen) }}</template></el-table-column>
            <el-table-column prop="phone" :label="t('seg_phone')" width="120" />
          </el-table>
          <h3>{{ t('seg_heatmap') }}</h3>
          <el-alert v-if="heatError" type="warning" :title="heatError" :closable="false" />
          <div ref="heat" class="qp-chart" role="img" :aria-label="t('seg_heatmap')" data-test="rfm-heatmap"></div>
          <h3>{{ t('seg_snapshots') }}</h3>
          <el-table :data="snapshots" :empty-text="t('none')" size="small">
            <el-table-column :label="t('seg_snapshot_dir')" min-width="200"><template #default="{ row }">{{ row.snapshot.split('/').pop() }}</template></el-table-column>
            <el-table-column prop="name" :label="t('name')" min-width="110" />
            <el-table-column prop="count" :label="t('count')" width="90" />
            <el-table-column :label="t('created')" width="150"><template #default="{ row }">{{ dateTime(row.taken_at) }}</template></el-table-column>
          </el-table>
        </section>
      </div>`,
  };
})();
