// 门店: each store's printer agent and printer status.
(function () {
  "use strict";
  const { t, dateTime } = window.QP.i18n;
  const api = window.QP.api;
  window.QP.pages.stores = {
    data() { return { stores: [], loadError: "", poll: null }; },
    mounted() { this.load(); this.poll = setInterval(() => this.load(), 5000); },
    beforeUnmount() { clearInterval(this.poll); },
    methods: {
      t, dateTime,
      async load() {
        try { this.stores = (await api.get("/v1/printers")).stores; this.loadError = ""; }
        catch (exc) { this.loadError = exc.status === 404 || exc.status === 405 ? t("not_available") : exc.message; }
      },
      printerState(row) {
        const s = (row.printer && row.printer.state) || "";
        return ["online", "offline", "paper_out", "cover_open"].includes(s) ? t(s) : s || "—";
      },
    },
    template: `
      <h1>{{ t('nav_stores') }}</h1>
      <section class="qp-card" aria-labelledby="store-list">
        <h2 id="store-list">{{ t('store_list') }} <el-button text @click="load">{{ t('refresh') }}</el-button></h2>
        <el-alert v-if="loadError" type="warning" :title="loadError" :closable="false" data-test="load-error" />
        <el-table :data="stores" :empty-text="t('none')" data-test="store-table">
          <el-table-column prop="store_id" :label="t('store_id')" min-width="100" />
          <el-table-column :label="t('store_agent')" width="100"><template #default="{ row }">
            <el-tag :type="row.agent_online ? 'success' : 'danger'">{{ row.agent_online ? t('online') : t('offline') }}</el-tag></template></el-table-column>
          <el-table-column :label="t('store_printer')" width="110"><template #default="{ row }">{{ printerState(row) }}</template></el-table-column>
          <el-table-column :label="t('store_seen')" min-width="150"><template #default="{ row }">{{ dateTime(row.last_seen) }}</template></el-table-column>
          <el-table-column prop="waiting_on_service" :label="t('store_queue')" width="90" />
          <el-table-column :label="t('store_detail')" min-width="160"><template #default="{ row }">{{ (row.printer && row.printer.detail) || '' }}</template></el-table-column>
        </el-table>
      </section>`,
  };
})();
