// The KPI report's charts: percent of target per measure, and each member's counts for a team.
(function () {
  "use strict";

  var PALETTE = ["#2f6fde", "#2f9e5b", "#ef8a3c", "#8e5bd6", "#d64545", "#1fa2b5", "#e3bd3b", "#6c757d", "#c2569b"];

  function percentChart(canvas, data) {
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {
            label: data.percentLabel,
            data: data.percent,
            backgroundColor: data.percent.map(function (value) {
              return value >= 100 ? "#2f9e5b" : value >= 50 ? "#e3bd3b" : "#d64545";
            }),
            maxBarThickness: 28,
          },
        ],
      },
      options: {
        indexAxis: "y",
        aspectRatio: 1.6,
        animation: false,
        scales: { x: { beginAtZero: true, suggestedMax: 100, ticks: { callback: function (v) { return v + " %"; } } } },
        plugins: { legend: { display: false } },
      },
    });
  }

  function membersChart(canvas, members) {
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: members.labels,
        datasets: members.series.map(function (series, index) {
          return { label: series.label, data: series.data, backgroundColor: PALETTE[index % PALETTE.length], maxBarThickness: 24 };
        }),
      },
      options: {
        aspectRatio: 3,
        animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        plugins: { legend: { position: "bottom" } },
      },
    });
  }

  function draw() {
    var source = document.getElementById("kpi-chart-data");
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var canvas = document.getElementById("kpi-chart");
    if (canvas && data.labels.length) {
      percentChart(canvas, data);
    }
    var members = document.getElementById("kpi-members-chart");
    if (members && data.members && data.members.series.length) {
      membersChart(members, data.members);
    }
  }

  // The target form's month and quarter buttons fill both ends of the period.
  function periodShortcuts() {
    var start = document.getElementById("id_period_start");
    var end = document.getElementById("id_period_end");
    document.querySelectorAll("[data-period-start]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (start && end) {
          start.value = button.dataset.periodStart;
          end.value = button.dataset.periodEnd;
        }
      });
    });
  }

  function start() {
    draw();
    periodShortcuts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
