// Draws each <canvas data-chart="ID">: the JSON of element ID holds hourly loads
// archived and errored (bars) and rows applied (a line, right axis). Chart.js is
// vendored in /static/vendor/chartjs; nothing is loaded from elsewhere.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  if (typeof Chart === "undefined") {
    return;
  }
  document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    new Chart(canvas, {
      data: {
        labels: data.hours.map(function (hour) { return hour.slice(5); }),
        datasets: [
          { type: "bar", label: "archived", data: data.archived, stack: "loads",
            backgroundColor: "#3b7d4f", yAxisID: "loads" },
          { type: "bar", label: "errored", data: data.errored, stack: "loads",
            backgroundColor: "#c0392b", yAxisID: "loads" },
          { type: "line", label: "rows applied", data: data.rows, borderColor: "#2c5d8f",
            backgroundColor: "#2c5d8f", pointRadius: 2, tension: 0.2, yAxisID: "rows" }
        ]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
          loads: { type: "linear", position: "left", stacked: true, beginAtZero: true,
                   title: { display: true, text: "loads" }, ticks: { precision: 0 } },
          rows: { type: "linear", position: "right", beginAtZero: true,
                  title: { display: true, text: "rows" }, grid: { drawOnChartArea: false } }
        }
      }
    });
    canvas.dataset.drawn = "true";
  });
});
