// The only way the pages talk to the server: /v1 JSON over fetch, with the session cookie
// (sent by the browser, unreadable here) and the CSRF token on every state-changing request.
(function () {
  "use strict";
  const session = Vue.reactive({ role: "", merchant_id: "", csrf_token: "", timezone: "" });

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
      this.field = this.body.field || "";
      this.reason = this.body.reason || "";
    }
  }

  async function request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (!["GET", "HEAD"].includes(method) && session.csrf_token) {
      headers["X-CSRF-Token"] = session.csrf_token;
    }
    let response;
    try {
      response = await fetch(path, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (exc) {
      throw new ApiError(0, { message: String(exc) });
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (exc) { data = { message: text }; }
    if (!response.ok) {
      if (response.status === 401 && path !== "/console/session" && window.QP.onSignedOut) {
        window.QP.onSignedOut();
      }
      throw new ApiError(response.status, data);
    }
    return data;
  }

  // Field errors from /v1 name the field ("discount_fen", "content.sms.text"); a form maps them
  // onto its own inputs so each message shows beside the input it is about.
  function fieldErrors(exc, mapping) {
    const errors = {};
    if (!(exc instanceof ApiError)) return { _: String(exc) };
    const field = exc.field || "";
    const key = (mapping && (mapping[field] || mapping[field.split(".")[0]])) || field;
    errors[key || "_"] = exc.message;
    if (key && !(mapping && Object.values(mapping).includes(key)) && !mapping?.[field]) {
      errors._ = `${field}: ${exc.message}`;
    }
    return errors;
  }

  window.QP.api = {
    session, ApiError, fieldErrors,
    get: (path) => request("GET", path),
    post: (path, body) => request("POST", path, body === undefined ? {} : body),
    put: (path, body) => request("PUT", path, body),
    del: (path) => request("DELETE", path),
  };
})();
