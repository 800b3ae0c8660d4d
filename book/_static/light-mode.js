// A first visit has no stored light/dark mode, and the theme then logs a console error
// ("Got invalid theme mode"); start from "auto", the theme's own default.
if (!document.documentElement.dataset.mode) { document.documentElement.dataset.mode = "auto"; }
