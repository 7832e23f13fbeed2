// 效果分析: a campaign's funnel, redemption, incremental revenue with its interval and ROI, by
// channel, as ECharts charts with the same numbers in a table beside each.
(function () {
  "use strict";
  const { t, yuan, percent } = window.QP.i18n;
  const api = window.QP.api;
  const charts = window.QP.charts;
  const STAGES = ["targeted", "issued", "sent", "delivered", "redeemed"];

  function stageLabel(stage) { return t(stage === "targeted" ? "res_targeted" : stage === "redeemed" ? "res_redeemed" : "cmp_" + stage); }
  function pick(obj, ...names) {
    for (const n of names) if (obj && obj[n] !== undefined && obj[n] !== null) return obj[n];
    return null;
  }

  window.QP.pages.results = {
    data() { return { campaigns: [], selected: "", roi: null, error: "", loading: false }; },
    computed: {
      funnelRows() {
        if (!this.roi) return [];
        return STAGES.map((s) => ({ stage: s, label: stageLabel(s), members: pick(this.roi, s) }))
          .filter((r) => r.members !== null);
      },
      upliftRows() {
        const r = this.roi;
        if (!r) return [];
        const interval = pick(r, "incremental_revenue_interval_fen", "interval_fen") || [];
        return [
          { name: t("res_treated"), value: yuan(pick(r, "revenue_per_treated_fen", "treated_revenue_per_member_fen")) },
          { name: t("res_control"), value: yuan(pick(r, "revenue_per_held_out_fen", "held_out_revenue_per_member_fen")) },
          { name: t("res_incremental"), value: yuan(pick(r, "incremental_revenue_fen")) },
          { name: t("res_interval"), value: interval.length === 2 ? `${yuan(interval[0])} ~ ${yuan(interval[1])}` : "—" },
          { name: t("res_redemption_rate"), value: percent(pick(r, "redemption_rate")) },
          { name: t("res_cost"), value: yuan(pick(r, "total_cost_fen", "cost_fen")) },
          { name: t("res_roi"), value: pick(r, "roi") === null ? "—" : Number(r.roi).toFixed(2) },
        ];
      },
      channelRows() { return (this.roi && (this.roi.by_channel || [])) || []; },
    },
    async mounted() {
      try { this.campaigns = (await api.get("/v1/campaigns")).campaigns; } catch (exc) { this.error = exc.message; }
      if (this.campaigns.length && !this.selected) { this.selected = this.campaigns[0].campaign_id; this.load(); }
    },
    beforeUnmount() { charts.dispose(this.$refs.funnel); charts.dispose(this.$refs.uplift); },
    methods: {
      t, yuan, percent,
      async load() {
        this.error = ""; this.loading = true;
        try {
          this.roi = await api.get(`/v1/campaigns/${encodeURIComponent(this.selected)}/roi`);
          await this.$nextTick();
          this.draw();
        } catch (exc) {
          this.roi = null;
          this.error = exc.status === 404 && !exc.body.field ? t("not_available") + `（${exc.message}）` : exc.message;
        } finally { this.loading = false; }
      },
      draw() {
        const font = { fontFamily: charts.font };
        charts.draw(this.$refs.funnel, {
          textStyle: font, tooltip: { trigger: "item" },
          series: [{ type: "funnel", left: "10%", width: "80%", sort: "none", minSize: "10%",
                     label: { show: true, position: "inside", formatter: "{b}: {c}" },
                     data: this.funnelRows.map((r) => ({ name: r.label, value: r.members })) }],
        });
        const r = this.roi;
        const treated = pick(r, "revenue_per_treated_fen", "treated_revenue_per_member_fen");
        const control = pick(r, "revenue_per_held_out_fen", "held_out_revenue_per_member_fen");
        const interval = pick(r, "incremental_revenue_interval_fen", "interval_fen") || [];
        const inc = pick(r, "incremental_revenue_fen");
        const fen = (v) => (v === null || v === undefined ? 0 : v / 100);
        charts.draw(this.$refs.uplift, {
          textStyle: font, tooltip: { trigger: "axis" }, grid: { left: 70, right: 20, top: 30, bottom: 40 },
          xAxis: { type: "category", data: [t("res_treated"), t("res_control"), t("res_incremental")] },
          yAxis: { type: "value", name: t("yuan") },
          series: [
            { type: "bar", data: [fen(treated), fen(control), fen(inc)], label: { show: true, position: "top" } },
            { type: "line", name: t("res_interval"), symbol: "rect", lineStyle: { type: "dashed" },
              data: interval.length === 2 ? [null, null, fen(interval[1])] : [] },
            { type: "line", name: t("res_interval"), symbol: "rect", lineStyle: { type: "dashed" },
              data: interval.length === 2 ? [null, null, fen(interval[0])] : [] },
          ],
        });
      },
    },
    template: `
      <h1>{{ t('nav_results') }}</h1>
      <section class="qp-card">
        <el-form label-position="top" @submit.prevent="load" class="qp-row">
          <el-form-item :label="t('res_campaign')" for="res-campaign">
            <el-select id="res-campaign" v-model="selected" filterable style="min-width: 260px" :aria-label="t('res_campaign')" @change="load">
              <el-option v-for="c in campaigns" :key="c.campaign_id" :value="c.campaign_id" :label="c.campaign_id + ' · ' + (c.name || '')" />
            </el-select>
          </el-form-item>
          <el-button native-type="submit" :loading="loading" :disabled="!selected">{{ t('refresh') }}</el-button>
        </el-form>
        <el-alert v-if="error" type="warning" :title="error" :closable="false" data-test="load-error" />
      </section>
      <div class="qp-columns" v-show="roi">
        <section class="qp-card qp-wide" aria-labelledby="res-funnel">
          <h2 id="res-funnel">{{ t('res_funnel') }}</h2>
          <div ref="funnel" class="qp-chart" role="img" :aria-label="t('res_funnel')" data-test="funnel-chart"></div>
        </section>
        <section class="qp-card">
          <el-table :data="funnelRows" size="small" data-test="funnel-table">
            <el-table-column prop="label" :label="t('res_stage')" />
            <el-table-column prop="members" :label="t('res_members')" />
          </el-table>
        </section>
      </div>
      <div class="qp-columns" v-show="roi">
        <section class="qp-card qp-wide" aria-labelledby="res-uplift">
          <h2 id="res-uplift">{{ t('res_uplift') }}</h2>
          <div ref="uplift" class="qp-chart" role="img" :aria-label="t('res_uplift')" data-test="uplift-chart"></div>
        </section>
        <section class="qp-card">
          <el-table :data="upliftRows" size="small" data-test="uplift-table">
            <el-table-column prop="name" :label="t('name')" /><el-table-column prop="value" :label="t('total')" />
          </el-table>
        </section>
      </div>
      <section class="qp-card" v-if="channelRows.length">
        <h2>{{ t('res_by_channel') }}</h2>
        <el-table :data="channelRows" size="small">
          <el-table-column prop="channel" :label="t('res_channel')" />
          <el-table-column prop="sent" :label="t('cmp_sent')" />
          <el-table-column prop="delivered" :label="t('cmp_delivered')" />
          <el-table-column prop="redeemed" :label="t('res_redeemed')" />
        </el-table>
      </section>`,
  };
})();
