// The console shell: sign-in gate, navigation by role, language switch, hash routes.
(function () {
  "use strict";
  const { t, state, setLang } = window.QP.i18n;
  const api = window.QP.api;
  // each page and the roles that may open it (the /v1 API enforces the same roles)
  const PAGES = [
    { key: "segments", roles: ["operator"] },
    { key: "templates", roles: ["operator"] },
    { key: "campaigns", roles: ["operator"] },
    { key: "schedules", roles: ["operator"] },
    { key: "results", roles: ["operator", "analyst"] },
    { key: "stores", roles: ["operator"] },
  ];

  const App = {
    components: Object.fromEntries(Object.entries(window.QP.pages).map(([k, v]) => [`page-${k}`, v])),
    data() { return { ready: false, route: "", session: api.session, i18n: state }; },
    computed: {
      pages() { return PAGES.filter((p) => p.roles.includes(this.session.role)); },
      current() {
        const found = this.pages.find((p) => p.key === this.route);
        return found ? found.key : (this.pages[0] && this.pages[0].key);
      },
      locale() { return state.lang === "zh" ? window.ElementPlusLocaleZhCn : window.ElementPlusLocaleEn; },
    },
    async mounted() {
      window.addEventListener("hashchange", this.readRoute);
      this.readRoute();
      window.QP.onSignedOut = () => this.forget();
      try { this.remember(await api.get("/console/session")); } catch (exc) { this.forget(); }
      this.ready = true;
    },
    methods: {
      t,
      readRoute() { this.route = window.location.hash.replace(/^#\/?/, ""); },
      remember(body) {
        Object.assign(this.session, body);
        state.timezone = body.timezone || state.timezone;
      },
      forget() { Object.assign(this.session, { role: "", merchant_id: "", csrf_token: "" }); },
      async signOut() {
        try { await api.del("/console/session"); } finally { this.forget(); }
      },
      toggleLang() { setLang(state.lang === "zh" ? "en" : "zh"); },
    },
    template: `
      <el-config-provider :locale="locale">
        <a class="qp-skip" href="#main" @click.prevent="$refs.main && $refs.main.focus()">{{ t('skip') }}</a>
        <header class="qp-header">
          <span class="qp-brand">{{ t('app') }}</span>
          <span class="qp-spacer"></span>
          <span v-if="session.role" class="qp-who" data-test="who">
            {{ t('role_' + session.role) }} · {{ t('merchant') }} {{ session.merchant_id }} · {{ t('tz') }} {{ i18n.timezone }}</span>
          <el-button text @click="toggleLang" data-test="lang">{{ t('lang') }}</el-button>
          <el-button v-if="session.role" text @click="signOut" data-test="sign-out">{{ t('signOut') }}</el-button>
        </header>
        <div v-if="!ready" class="qp-loading">{{ t('loading') }}</div>
        <page-signin v-else-if="!session.role" @signed-in="remember" />
        <div v-else class="qp-body">
          <nav class="qp-nav" :aria-label="t('app')">
            <a v-for="p in pages" :key="p.key" :href="'#/' + p.key" :data-page="p.key"
               :class="{ active: p.key === current }" :aria-current="p.key === current ? 'page' : null">
              {{ t('nav_' + p.key) }}</a>
          </nav>
          <main id="main" ref="main" tabindex="-1" class="qp-main">
            <component :is="'page-' + current" :key="current + i18n.lang" />
          </main>
        </div>
      </el-config-provider>`,
  };

  const app = Vue.createApp(App);
  app.use(ElementPlus);
  app.mount("#app");
})();
