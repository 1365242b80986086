"""How good the model's labels were, and what to decide from it: one definition of a wrong image
(`verdict`), quality figures with their intervals (`quality`, `measures`), the audit of
auto-accepted images and its gate (`audit`), thresholds for the next run (`thresholds`), the
statistics they share (`intervals`). Apart from the manifest's rules and building: these modules
read reviewed records and predictions and write nothing. docs/closing-the-loop.md explains each
figure and the promise it makes."""
