// Console text (zh-CN first, English on request) and the formats every page shares:
// money arrives from /v1 in integer fen and is shown in yuan with two decimals; times are shown
// in the merchant's timezone, whatever the browser's own is.
(function () {
  "use strict";
  const MESSAGES = {
    zh: {
      app: "券派 · 运营控制台", skip: "跳到主要内容", lang: "English", signOut: "退出登录",
      role_operator: "运营", role_analyst: "分析师", merchant: "商户", tz: "时区",
      nav_segments: "会员分群", nav_templates: "优惠券", nav_campaigns: "营销活动",
      nav_schedules: "周期任务", nav_results: "效果分析", nav_stores: "门店",
      signin_title: "登录运营控制台", signin_token: "角色令牌", signin_hint:
        "粘贴运营或分析师令牌（quanpai serve --print-token operator）。令牌换成仅限本站的会话 Cookie，页面脚本读不到它。",
      signin_submit: "登录", signin_ok: "已登录",
      refresh: "刷新", save: "保存", create: "创建", cancel: "取消", close: "关闭", next: "下一步",
      back: "上一步", launch: "启动活动", loading: "加载中…", none: "暂无数据", actions: "操作",
      name: "名称", status: "状态", count: "数量", total: "合计", created: "已创建", failed_load:
        "加载失败", not_available: "该接口尚未提供", yuan: "元", days: "天", permille: "‰",
      // segments
      seg_conditions: "筛选条件", seg_rfm11: "RFM 分群（11 类）", seg_eight: "RFM 八类客户",
      seg_tier: "会员等级", seg_points_min: "积分不少于", seg_spend_min: "累计消费不少于（元）",
      seg_dormant: "沉睡天数不少于", seg_birthday: "生日在几天内（含农历生日）",
      seg_reachable: "可触达渠道（任一）", seg_purchased: "购买情况", seg_any: "不限",
      seg_bought: "买过", seg_never: "从未购买", seg_count: "符合条件的会员",
      seg_of_total: "共 {total} 名会员", seg_sample: "会员样例（已脱敏）", seg_heatmap: "RFM 热力图（R × F 会员数）",
      seg_snapshot_name: "快照名称（中文）", seg_snapshot_id: "快照标识（字母、数字、- 或 _）", seg_snapshot_dir: "快照目录", seg_save: "保存为快照", seg_saved: "快照已保存：{id}（{count} 人）",
      seg_snapshots: "已保存的快照", seg_recency: "最近消费（天前）", seg_frequency: "消费次数",
      seg_spend: "累计消费", seg_segment: "分群", seg_member: "会员", seg_phone: "手机号",
      tier_normal: "普通", tier_silver: "银卡", tier_gold: "金卡", tier_platinum: "白金",
      ch_sms: "短信", ch_wechat: "微信", ch_alipay: "支付宝", ch_wechat_mass: "微信群发",
      ch_wechat_template: "微信模板消息", ch_alipay_cash: "支付宝现金红包", ch_auto: "自动（最便宜的可达渠道）",
      // templates
      tpl_new: "新建优惠券模板", tpl_list: "优惠券模板", tpl_kind: "券类型", tpl_name: "券名称",
      tpl_stock: "发放总量", tpl_threshold: "使用门槛（元）", tpl_discount: "减免金额（元）",
      tpl_rate: "折扣（如 8.5 折填 8.5）", tpl_cap: "最多优惠（元，0 不封顶）", tpl_item: "兑换商品 SKU",
      tpl_uses: "可用次数", tpl_duration: "有效天数（时长卡）", tpl_daily: "每日限用次数（0 不限）",
      tpl_face: "面值（元）", tpl_activation: "售出时激活（未激活礼品卡）", tpl_valid_days: "领取后有效天数",
      tpl_per_member: "每人限领", tpl_budget: "预算（元，空为不限）", tpl_rule: "规则", tpl_stock_left: "库存",
      tpl_created: "模板已创建：{id}", tpl_id: "模板编号",
      kind_threshold: "满减券", kind_discount: "折扣券", kind_cash: "代金券（无门槛）", kind_exchange: "兑换券",
      kind_count_card: "次卡", kind_duration_card: "时长卡", kind_gift_card: "礼品卡",
      // campaigns
      cmp_new: "新建营销活动", cmp_list: "营销活动", cmp_step_audience: "人群", cmp_step_coupon: "优惠券",
      cmp_step_channels: "渠道与内容", cmp_step_rules: "规则", cmp_step_review: "确认",
      cmp_name: "活动名称", cmp_snapshot: "人群快照", cmp_template: "优惠券模板", cmp_channels: "发送渠道（按顺序尝试）",
      cmp_sms_text: "短信内容", cmp_sms_len: "{chars} 字，计 {segments} 条短信", cmp_wechat_first: "微信模板：标题（first）",
      cmp_wechat_remark: "微信模板：备注（remark）", cmp_alipay_title: "支付宝券标题", cmp_preview: "预览",
      cmp_variables: "可用变量：{name} 姓名、{coupon} 券名、{value} 面额、{expiry} 到期日、{store} 门店、{link} 链接",
      cmp_holdout: "对照组比例（‰，不发券，用于计算增量）", cmp_start: "开始时间（商户时区；空为立即）",
      cmp_max_coupons: "最多发券数", cmp_max_cost: "最多券成本（元）", cmp_freq: "频次上限：每名会员每",
      cmp_freq_days: "天最多收到一条券消息", cmp_launched: "活动已创建：{id}", cmp_progress: "进度",
      cmp_planned: "计划", cmp_issued: "已发券", cmp_sent: "已发送", cmp_delivered: "已送达", cmp_failed: "失败",
      cmp_deferred: "延后", cmp_held_out: "对照组", cmp_in_doubt: "待确认",
      pause: "暂停", resume: "恢复", cancel_campaign: "取消活动", confirm_cancel: "确定取消该活动？已发出的券不会收回。",
      st_draft: "草稿", st_scheduled: "已排期", st_running: "进行中", st_paused: "已暂停", st_completed: "已完成",
      st_completed_with_failures: "已完成（有失败）", st_cancelled: "已取消",
      // schedules
      sch_list: "周期任务", sch_trigger: "触发方式", sch_next: "下次运行", sch_preview_date: "预览日期",
      sch_preview: "这一天谁会收到", sch_reason: "原因", sch_in_data: "数据中的会员", sch_triggered: "当天触发", sch_filtered_out: "被筛选条件排除", sch_already_served: "本周期已发过", sch_would_send: "将会发送",
      trg_birthday: "生日", trg_wake_up: "沉睡唤醒", trg_holiday: "节假日", trg_member_day: "会员日",
      trg_first_purchase_anniversary: "首购纪念日",
      sch_new: "新建周期任务", sch_id: "任务标识（小写字母、数字或 -）", sch_days_before: "提前几天发（0 为当天）",
      sch_inactive_days: "多少天未消费算沉睡", sch_cooldown_days: "同一会员再次唤醒至少间隔（天）",
      sch_occasions: "节日", sch_member_days: "会员日", sch_weekly: "每周", sch_monthly: "每月",
      sch_monthly_hint: "每月几号，如 8 或 8,18", sch_send_at: "发送时间（商户时区）",
      sch_audience_hint: "人群：分群页所用的会员数据（服务器的 QUANPAI_SEGMENT_RULES）。更多条件请用下方 JSON。",
      sch_created: "周期任务已创建：{id}", sch_json: "高级：粘贴 JSON 定义",
      occ_new_year: "元旦", occ_spring_festival: "春节", occ_lantern: "元宵节", occ_qingming: "清明节",
      occ_labour_day: "劳动节", occ_dragon_boat: "端午节", occ_qixi: "七夕", occ_mid_autumn: "中秋节",
      occ_double_ninth: "重阳节", occ_national_day: "国庆节",
      wd_mon: "周一", wd_tue: "周二", wd_wed: "周三", wd_thu: "周四", wd_fri: "周五", wd_sat: "周六", wd_sun: "周日",
      // results
      res_campaign: "活动", res_funnel: "转化漏斗", res_uplift: "增量收入（95% 置信区间）", res_stage: "环节",
      res_members: "人数", res_rate: "比率", res_redeemed: "已核销", res_targeted: "目标人群",
      res_redemption_rate: "核销率", res_incremental: "增量收入", res_interval: "置信区间", res_roi: "ROI",
      res_cost: "成本", res_by_channel: "按渠道", res_channel: "渠道", res_treated: "发券组人均消费",
      res_control: "对照组人均消费",
      // stores
      store_list: "门店打印机", store_id: "门店", store_agent: "打印代理", store_printer: "打印机",
      store_seen: "最后在线", store_queue: "待上报", store_detail: "详情", online: "在线", offline: "离线", paper_out: "缺纸", cover_open: "开盖",
    },
    en: {
      app: "Quanpai · Operator console", skip: "Skip to main content", lang: "中文", signOut: "Sign out",
      role_operator: "Operator", role_analyst: "Analyst", merchant: "Merchant", tz: "Timezone",
      nav_segments: "Segments", nav_templates: "Coupons", nav_campaigns: "Campaigns",
      nav_schedules: "Schedules", nav_results: "Results", nav_stores: "Stores",
      signin_title: "Sign in to the console", signin_token: "Role token", signin_hint:
        "Paste an operator or analyst token (quanpai serve --print-token operator). It is exchanged for a session cookie page scripts cannot read.",
      signin_submit: "Sign in", signin_ok: "Signed in",
      refresh: "Refresh", save: "Save", create: "Create", cancel: "Cancel", close: "Close", next: "Next",
      back: "Back", launch: "Launch campaign", loading: "Loading…", none: "No data", actions: "Actions",
      name: "Name", status: "Status", count: "Count", total: "Total", created: "Created", failed_load:
        "Could not load", not_available: "This API is not available yet", yuan: "yuan", days: "days", permille: "‰",
      seg_conditions: "Conditions", seg_rfm11: "RFM segments (11)", seg_eight: "RFM eight classes",
      seg_tier: "Tier", seg_points_min: "Points at least", seg_spend_min: "Total spend at least (yuan)",
      seg_dormant: "Dormant for at least (days)", seg_birthday: "Birthday within (days, lunar included)",
      seg_reachable: "Reachable on (any)", seg_purchased: "Purchases", seg_any: "Any",
      seg_bought: "Has bought", seg_never: "Never bought", seg_count: "Matching members",
      seg_of_total: "of {total} members", seg_sample: "Sample (masked)", seg_heatmap: "RFM heatmap (members per R × F)",
      seg_snapshot_name: "Snapshot name (Chinese)", seg_snapshot_id: "Snapshot id (letters, digits, - or _)", seg_snapshot_dir: "Snapshot directory", seg_save: "Save as snapshot", seg_saved: "Snapshot saved: {id} ({count} members)",
      seg_snapshots: "Saved snapshots", seg_recency: "Last purchase (days ago)", seg_frequency: "Orders",
      seg_spend: "Total spend", seg_segment: "Segment", seg_member: "Member", seg_phone: "Phone",
      tier_normal: "Normal", tier_silver: "Silver", tier_gold: "Gold", tier_platinum: "Platinum",
      ch_sms: "SMS", ch_wechat: "WeChat", ch_alipay: "Alipay", ch_wechat_mass: "WeChat mass send",
      ch_wechat_template: "WeChat template", ch_alipay_cash: "Alipay cash", ch_auto: "Auto (cheapest reachable)",
      tpl_new: "New coupon template", tpl_list: "Coupon templates", tpl_kind: "Kind", tpl_name: "Name",
      tpl_stock: "Total stock", tpl_threshold: "Threshold (yuan)", tpl_discount: "Discount (yuan)",
      tpl_rate: "Pay rate (8.5 = pay 85%)", tpl_cap: "Cap (yuan, 0 = none)", tpl_item: "Free item SKU",
      tpl_uses: "Uses", tpl_duration: "Duration (days)", tpl_daily: "Uses a day (0 = any)",
      tpl_face: "Face value (yuan)", tpl_activation: "Activated on sale", tpl_valid_days: "Valid days after issue",
      tpl_per_member: "Per member", tpl_budget: "Budget (yuan, empty = none)", tpl_rule: "Rule", tpl_stock_left: "Stock",
      tpl_created: "Template created: {id}", tpl_id: "Template id",
      kind_threshold: "Spend & save", kind_discount: "Percentage off", kind_cash: "Cash voucher", kind_exchange: "Free item",
      kind_count_card: "Count card", kind_duration_card: "Duration card", kind_gift_card: "Gift card",
      cmp_new: "New campaign", cmp_list: "Campaigns", cmp_step_audience: "Audience", cmp_step_coupon: "Coupon",
      cmp_step_channels: "Channels & content", cmp_step_rules: "Rules", cmp_step_review: "Review",
      cmp_name: "Campaign name", cmp_snapshot: "Audience snapshot", cmp_template: "Coupon template", cmp_channels: "Channels (in order)",
      cmp_sms_text: "SMS text", cmp_sms_len: "{chars} characters, {segments} SMS", cmp_wechat_first: "WeChat template: first",
      cmp_wechat_remark: "WeChat template: remark", cmp_alipay_title: "Alipay voucher title", cmp_preview: "Preview",
      cmp_variables: "Variables: {name}, {coupon}, {value}, {expiry}, {store}, {link}",
      cmp_holdout: "Holdout (‰ of members kept as control)", cmp_start: "Start (merchant time; empty = now)",
      cmp_max_coupons: "Max coupons", cmp_max_cost: "Max coupon cost (yuan)", cmp_freq: "Frequency cap: one message per member per",
      cmp_freq_days: "days", cmp_launched: "Campaign created: {id}", cmp_progress: "Progress",
      cmp_planned: "Planned", cmp_issued: "Issued", cmp_sent: "Sent", cmp_delivered: "Delivered", cmp_failed: "Failed",
      cmp_deferred: "Deferred", cmp_held_out: "Held out", cmp_in_doubt: "In doubt",
      pause: "Pause", resume: "Resume", cancel_campaign: "Cancel", confirm_cancel: "Cancel this campaign? Coupons already issued stay issued.",
      st_draft: "Draft", st_scheduled: "Scheduled", st_running: "Running", st_paused: "Paused", st_completed: "Completed",
      st_completed_with_failures: "Completed with failures", st_cancelled: "Cancelled",
      sch_list: "Schedules", sch_trigger: "Trigger", sch_next: "Next run", sch_preview_date: "Preview date",
      sch_preview: "Who would get it that day", sch_reason: "Reason", sch_in_data: "Members in the data", sch_triggered: "Triggered that day", sch_filtered_out: "Filtered out", sch_already_served: "Already served this period", sch_would_send: "Would send",
      trg_birthday: "Birthday", trg_wake_up: "Wake-up", trg_holiday: "Holiday", trg_member_day: "Member day",
      trg_first_purchase_anniversary: "First purchase anniversary",
      sch_new: "New schedule", sch_id: "Schedule id (a-z, 0-9, -)", sch_days_before: "Days before (0: on the day)",
      sch_inactive_days: "Dormant after days without a purchase", sch_cooldown_days: "Days before the same member is woken again",
      sch_occasions: "Occasions", sch_member_days: "Member day", sch_weekly: "Weekly", sch_monthly: "Monthly",
      sch_monthly_hint: "Days of the month, e.g. 8 or 8,18", sch_send_at: "Send at (merchant time)",
      sch_audience_hint: "Audience: the member data the segment pages use (the server's QUANPAI_SEGMENT_RULES). More conditions: paste JSON below.",
      sch_created: "Schedule created: {id}", sch_json: "Advanced: paste a JSON definition",
      occ_new_year: "New Year's Day", occ_spring_festival: "Spring Festival", occ_lantern: "Lantern Festival",
      occ_qingming: "Qingming", occ_labour_day: "Labour Day", occ_dragon_boat: "Dragon Boat Festival",
      occ_qixi: "Qixi", occ_mid_autumn: "Mid-Autumn Festival", occ_double_ninth: "Double Ninth", occ_national_day: "National Day",
      wd_mon: "Mon", wd_tue: "Tue", wd_wed: "Wed", wd_thu: "Thu", wd_fri: "Fri", wd_sat: "Sat", wd_sun: "Sun",
      res_campaign: "Campaign", res_funnel: "Funnel", res_uplift: "Incremental revenue (95% interval)", res_stage: "Stage",
      res_members: "Members", res_rate: "Rate", res_redeemed: "Redeemed", res_targeted: "Targeted",
      res_redemption_rate: "Redemption rate", res_incremental: "Incremental revenue", res_interval: "Interval", res_roi: "ROI",
      res_cost: "Cost", res_by_channel: "By channel", res_channel: "Channel", res_treated: "Treated revenue / member",
      res_control: "Held-out revenue / member",
      store_list: "Store printers", store_id: "Store", store_agent: "Agent", store_printer: "Printer",
      store_seen: "Last seen", store_queue: "Waiting", store_detail: "Detail", online: "Online", offline: "Offline", paper_out: "Paper out", cover_open: "Cover open",
    },
  };

  const saved = window.localStorage.getItem("qp.lang");
  const state = Vue.reactive({ lang: saved === "en" ? "en" : "zh", timezone: "Asia/Shanghai" });

  function t(key, params) {
    const text = (MESSAGES[state.lang] && MESSAGES[state.lang][key]) || MESSAGES.zh[key] || key;
    if (!params) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  function setLang(lang) {
    state.lang = lang;
    window.localStorage.setItem("qp.lang", lang);
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }

  // 1234 fen -> "12.34"; integers only, so no floating-point rounding on money
  function yuan(fen) {
    if (fen === null || fen === undefined || fen === "") return "—";
    const n = BigInt(Math.trunc(Number(fen)));
    const sign = n < 0n ? "-" : "";
    const abs = n < 0n ? -n : n;
    const whole = (abs / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${sign}¥${whole}.${(abs % 100n).toString().padStart(2, "0")}`;
  }

  // "12.3" yuan typed by an operator -> 1230 fen, exactly (no float multiplication)
  function toFen(text) {
    if (text === null || text === undefined || String(text).trim() === "") return null;
    const match = /^\s*(-?)(\d+)(?:\.(\d{0,2}))?\s*$/.exec(String(text));
    if (!match) return NaN;
    const fen = Number(match[2]) * 100 + Number((match[3] || "").padEnd(2, "0"));
    return match[1] ? -fen : fen;
  }

  function dateTime(value) {
    if (!value) return "—";
    const moment = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (Number.isNaN(moment.getTime())) return String(value);
    return new Intl.DateTimeFormat(state.lang === "zh" ? "zh-CN" : "en-GB", {
      timeZone: state.timezone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false,
    }).format(moment);
  }

  // "2026-12-12T10:00:00" on the merchant's wall clock -> ISO with the merchant's offset then
  function zonedIso(naive) {
    if (!naive) return null;
    const asUtc = new Date(naive + "Z");
    const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
      timeZone: state.timezone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(asUtc).map((p) => [p.type, p.value]));
    const shown = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
    const minutes = Math.round((shown - asUtc.getTime()) / 60000);
    const sign = minutes < 0 ? "-" : "+";
    const abs = Math.abs(minutes);
    return `${naive}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
  }

  function percent(ratio) {
    if (ratio === null || ratio === undefined || Number.isNaN(Number(ratio))) return "—";
    return `${(Number(ratio) * 100).toFixed(2)}%`;
  }

  window.QP = window.QP || {};
  window.QP.i18n = { state, t, setLang, yuan, toFen, dateTime, zonedIso, percent, MESSAGES };
  window.QP.pages = {};
})();
