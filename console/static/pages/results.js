// 效果分析: a campaign's funnel, redemption, incremental revenue with its interval and ROI, by
// channel, as ECharts charts with the same numbers in a table beside each.
(function () {
  "use strict";
  const { t, yuan, percent } = window.QP.i18n;
  const api = window.QP.api;
  const charts = window.QP.charts;
  const STAGES = ["targeted", "issued", "sent", "delivered", "redeemed"];

  function stageLabel(stage) { return t(stage === "targeted" ? "res_targeted" : stage === "redeemed" ? "res_redeemed" : "cmp_" + stage); }

  window.QP.pages.results = {
    data() { return { campaigns: [], selected: "", roi: null, byChannel: [], error: "", loading: false }; },
    computed: {
      overall() { return this.roi && this.roi.campaigns.length ? this.roi.campaigns[0].rows[0] : null; },
      funnelRows() {
        const r = this.overall;
        if (!r) return [];
        return STAGES.map((s) => ({ stage: s, label: stageLabel(s), members: r[s] }));
      },
      upliftRows() {
        const r = this.overall;
        if (!r) return [];
        const interval = r.incremental_revenue_low_fen === null ? "—"
          : `${yuan(r.incremental_revenue_low_fen)} ~ ${yuan(r.incremental_revenue_high_fen)}`;
        return [
          { name: t("res_treated"), value: yuan(r.revenue_per_treated_fen) },
          { name: t("res_control"), value: yuan(r.revenue_per_held_fen) },
          { name: t("res_incremental"), value: yuan(r.incremental_revenue_fen) },
          { name: t("res_interval"), value: interval },
          { name: t("res_redemption_rate"), value: percent(r.redemption_rate) },
          { name: t("res_cost"), value: yuan(r.cost_fen) },
          { name: t("res_roi"), value: r.roi === null ? "—" : `${r.roi.toFixed(2)}` +
            (r.roi_low === null ? "" : ` (${r.roi_low.toFixed(2)} ~ ${r.roi_high.toFixed(2)})`) },
        ];
      },
      note() { return this.overall ? this.overall.note : ""; },
      channelRows() { return this.byChannel; },
    },
    async mounted() {
      // an analyst may not list campaigns: the id is typed instead
      try { this.campaigns = (await api.get("/v1/campaigns")).campaigns; } catch (exc) { this.campaigns = []; }
      if (this.campaigns.length && !this.selected) { this.selected = this.campaigns[0].campaign_id; this.load(); }
    },
    beforeUnmount() { charts.dispose(this.$refs.funnel); charts.dispose(this.$refs.uplift); },
    methods: {
      t, yuan, percent,
      async load() {
        this.error = ""; this.loading = true;
        try {
          const path = `/v1/campaigns/${encodeURIComponent(this.selected)}/roi`;
          this.roi = await api.get(path);
          const channels = await api.get(`${path}?by=channel`);
          this.byChannel = channels.campaigns.length ? channels.campaigns[0].rows : [];
          await this.$nextTick();
          this.draw();
        } catch (exc) {
          this.roi = null;
          this.error = exc.message;
        } finally { this.loading = false; }
      },
      draw() {
        if (!this.overall) return;
        const font = { fontFamily: charts.font };
        charts.draw(this.$refs.funnel, {
          textStyle: font, tooltip: { trigger: "item" },
          series: [{ type: "funnel", left: "10%", width: "80%", sort: "none", minSize: "10%",
                     label: { show: true, position: "inside", formatter: "{b}: {c}" },
                     data: this.funnelRows.map((r) => ({ name: r.label, value: r.members })) }],
        });
        const r = this.overall;
        const fen = (v) => (v === null || v === undefined ? null : v / 100);
        const low = fen(r.incremental_revenue_low_fen), high = fen(r.incremental_revenue_high_fen);
        charts.draw(this.$refs.uplift, {
          textStyle: font, tooltip: { trigger: "axis" }, grid: { left: 70, right: 20, top: 30, bottom: 40 },
          xAxis: { type: "category", data: [t("res_treated"), t("res_control"), t("res_incremental")] },
          yAxis: { type: "value", name: t("yuan") },
          series: [
            { type: "bar", data: [fen(r.revenue_per_treated_fen), fen(r.revenue_per_held_fen), fen(r.incremental_revenue_fen)],
              label: { show: true, position: "top" } },
            { type: "scatter", name: t("res_interval"), symbol: "rect", symbolSize: [24, 3],
              data: low === null ? [] : [[2, low], [2, high]] },
          ],
        });
      },
    },
    template: `
      <h1>{{ t('nav_results') }}</h1>
      <section class="qp-card">
        <el-form label-position="top" @submit.prevent="load" class="qp-row">
          <el-form-item :label="t('res_campaign')" for="res-campaign">
            <el-select id="res-campaign" v-model="selected" filterable allow-create default-first-option style="min-width: 260px" :aria-label="t('res_campaign')" @change="load">
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
      <el-alert v-if="note" type="info" :title="note" :closable="false" data-test="roi-note" />
      <section class="qp-card" v-if="channelRows.length">
        <h2>{{ t('res_by_channel') }}</h2>
        <el-table :data="channelRows" size="small">
          <el-table-column prop="value" :label="t('res_channel')" />
          <el-table-column prop="sent" :label="t('cmp_sent')" />
          <el-table-column prop="delivered" :label="t('cmp_delivered')" />
          <el-table-column prop="redeemed" :label="t('res_redeemed')" />
        </el-table>
      </section>`,
  };
})();
