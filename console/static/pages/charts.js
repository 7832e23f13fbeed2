// ECharts on a page: one chart per element, resized with the window, disposed with the page.
(function () {
  "use strict";
  window.QP.charts = {
    draw(el, option) {
      if (!el) return null;
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
      if (chart) chart.dispose();
    },
    font: '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif',
  };
})();
