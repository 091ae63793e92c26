//! What the emulated model answers: text, or a call of a tool.

/// What the model answers.
pub(crate) enum Answer {
    Text(String),
    ToolCall { name: String, arguments: String },
}

impl Answer {
    pub(crate) fn tokens(&self) -> usize {
        match self {
            Self::Text(text) => text.split_whitespace().count(),
            Self::ToolCall { .. } => 1,
        }
    }

    pub(crate) fn finish_reason(&self) -> &'static str {
        match self {
            Self::Text(_) => "stop",
            Self::ToolCall { .. } => "tool_calls",
        }
    }
}
