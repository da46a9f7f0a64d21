// The forecast chart: weighted open value and won value per month, one pair of bars per currency.
(function () {
  "use strict";

  var PALETTE = [
    ["#0d6efd", "#198754"],
    ["#6f42c1", "#20c997"],
    ["#fd7e14", "#0dcaf0"],
  ];

  var source = document.getElementById("forecast-chart-data");
  var canvas = document.getElementById("forecast-chart");
  var words = document.getElementById("forecast-labels");
  if (!source || !canvas || typeof Chart === "undefined") {
    return;
  }
  var data = JSON.parse(source.textContent);
  var datasets = [];
  Object.keys(data.series).forEach(function (currency, index) {
    var colours = PALETTE[index % PALETTE.length];
    datasets.push({
      label: words.getAttribute("data-weighted") + " " + currency,
      data: data.series[currency].weighted,
      backgroundColor: colours[0],
    });
    datasets.push({
      label: words.getAttribute("data-won") + " " + currency,
      data: data.series[currency].won,
      backgroundColor: colours[1],
    });
  });
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true } },
      plugins: { legend: { position: "bottom" } },
    },
  });
})();
