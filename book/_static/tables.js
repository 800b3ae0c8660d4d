// Numbers never wrap: a table cell that reads as a number ("97.3 ± 0.4", "+1.20 ± 0.31 points
// (n = 3)", "12 s") gets the class advbook-num (book/_static/tables.css).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("main table td").forEach((cell) => {
    const text = cell.textContent.trim();
    const letters = (text.match(/[a-z]/gi) || []).length;
    if (text.length <= 48 && /^[-+−(]?\d/.test(text) && letters <= 8) { cell.classList.add("advbook-num"); }
  });
});
