//! Grammar-profile parser for legal documents (built in issue 4).
