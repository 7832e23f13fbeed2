// 登录: a role token exchanged for the session cookie (POST /console/session).
(function () {
  "use strict";
  const { t } = window.QP.i18n;
  window.QP.pages.signin = {
    emits: ["signed-in"],
    data() { return { token: "", error: "", busy: false }; },
    methods: {
      t,
      async submit() {
        this.busy = true; this.error = "";
        try {
          const body = await window.QP.api.post("/console/session", { token: this.token });
          this.token = "";
          this.$emit("signed-in", body);
        } catch (exc) {
          this.error = exc.message;
        } finally {
          this.busy = false;
        }
      },
    },
    template: `
      <section class="qp-signin" aria-labelledby="signin-title">
        <h1 id="signin-title">{{ t('signin_title') }}</h1>
        <el-form label-position="top" @submit.prevent="submit">
          <el-form-item :label="t('signin_token')" :error="error" for="signin-token">
            <el-input id="signin-token" v-model="token" type="password" show-password
                      autocomplete="off" :aria-describedby="'signin-hint'" />
          </el-form-item>
          <p id="signin-hint" class="qp-hint">{{ t('signin_hint') }}</p>
          <el-button type="primary" native-type="submit" :loading="busy" :disabled="!token">
            {{ t('signin_submit') }}</el-button>
        </el-form>
      </section>`,
  };
})();
