// The feedback report's chart: scores per agent as stacked bars, from the page's JSON data.
(function () {
  "use strict";

  var COLOURS = { 1: "#d64545", 2: "#ef8a3c", 3: "#e3bd3b", 4: "#8cbf5a", 5: "#2f9e5b" };

  function draw() {
    var source = document.getElementById("feedback-chart-data");
    var canvas = document.getElementById("feedback-chart");
    if (!source || !canvas || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (series) {
          return {
            label: series.label,
            data: series.data,
            backgroundColor: COLOURS[series.score],
            stack: "scores",
            maxBarThickness: 36,
          };
        }),
      },
      options: {
        indexAxis: "y",
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
          y: { stacked: true },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              footer: function (items) {
                var index = items.length ? items[0].dataIndex : -1;
                return index < 0 ? "" : data.averageLabel + ": " + data.averages[index];
              },
            },
          },
        },
      },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
