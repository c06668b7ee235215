package line

// HasNewline is hasNewline, for tests in package line_test.
var HasNewline = hasNewline
