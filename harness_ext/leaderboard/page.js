// Sorting by any column, the plain / controlled view toggle and the method / control filters.
(function () {
  "use strict";
  const table = document.getElementById("leaderboard");
  const body = table.tBodies[0];
  const state = { view: "all", method: "", control: "" };

  function key(row, index, numeric) {
    const value = row.cells[index].dataset.value;
    if (value === "") return null;  // blanks sort last either way
    return numeric ? Number(value) : value;
  }

  function sortBy(header) {
    const index = Number(header.dataset.index);
    const numeric = header.dataset.type === "number";
    const ascending = header.getAttribute("aria-sort") !== "ascending";
    for (const other of table.querySelectorAll("th[aria-sort]")) other.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = key(a, index, numeric), y = key(b, index, numeric);
      if (x === null || y === null) return (x === null) - (y === null);
      const order = numeric ? x - y : String(x).localeCompare(String(y));
      return ascending ? order : -order;
    });
    for (const row of rows) body.appendChild(row);
  }

  function show() {
    for (const row of body.rows) {
      const inView = state.view === "all" || row.dataset.view === "reference" || row.dataset.view === state.view;
      const reference = row.dataset.view === "reference";
      const method = reference || !state.method || row.dataset.method === state.method;
      const control = reference || !state.control || row.dataset.control === state.control;
      row.classList.toggle("hidden", !(inView && method && control));
    }
    for (const button of document.querySelectorAll("button.view")) {
      button.classList.toggle("active", button.dataset.view === state.view);
    }
  }

  for (const header of table.querySelectorAll("th[data-index]")) {
    header.addEventListener("click", function () { sortBy(header); });
  }
  for (const button of document.querySelectorAll("button.view")) {
    button.addEventListener("click", function () { state.view = button.dataset.view; show(); });
  }
  for (const name of ["method", "control"]) {
    document.getElementById("filter-" + name).addEventListener("change", function (event) {
      state[name] = event.target.value;
      show();
    });
  }
  show();
})();
