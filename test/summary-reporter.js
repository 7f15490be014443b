/**
 * Prints one plain closing line, `N passed, N failed, N skipped`, after jest's own summary, so that any CI can read
 * the outcome without knowing jest's format.
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    process.stdout.write(
      `\nTests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests + results.numTodoTests} skipped\n`,
    );
  }
}
module.exports = SummaryReporter;
