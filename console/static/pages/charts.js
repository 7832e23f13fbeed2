// ECharts on a page: one chart per element, resized with the window, disposed with the page.
(function () {
  "use strict";
  window.QP.charts = {
    draw(el, option) {
      if (!el || !el.isConnected) return null; // the page was left before its data came
      const chart = window.echarts.getInstanceByDom(el) || window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(option, true);
      if (!el._qpResize) {
        el._qpResize = () => chart.resize();
        window.addEventListener("resize", el._qpResize);
      }
      return chart;
    },
    dispose(el) {
      if (!el) return;
      if (el._qpResize) window.removeEventListener("resize", el._qpResize);
      const chart = window.echarts.getInstanceByDom(el);
      // after the frame zrender may already have queued: disposing under it throws in its painter
      if (chart) window.requestAnimationFrame(() => chart.dispose());
    },
    font: '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif',
  };
})();
