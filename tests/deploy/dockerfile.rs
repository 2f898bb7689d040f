//! A small Dockerfile reader: instructions with their continuation lines
//! joined and comments dropped, enough to read ENTRYPOINT, EXPOSE, ENV,
//! USER, VOLUME, FROM and RUN.

/// One instruction: its keyword (upper case) and the rest of the line.
#[derive(Debug, Clone)]
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// For messages: the path under the repository.
    pub name: String,
    /// The whole text, comments included.
    pub text: String,
    pub instructions: Vec<Instruction>,
}

impl Dockerfile {
    pub fn parse(name: &str, text: &str) -> Dockerfile {
        let mut instructions = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            // Comment lines (and parser directives) are dropped, also in
            // the middle of a continued instruction, as Docker does.
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            match trimmed.strip_suffix('\\') {
                Some(head) => {
                    pending.push_str(head);
                    pending.push(' ');
                }
                None => {
                    pending.push_str(trimmed);
                    instructions.push(instruction(&pending));
                    pending.clear();
                }
            }
        }
        if !pending.trim().is_empty() {
            instructions.push(instruction(&pending));
        }
        Dockerfile {
            name: name.to_owned(),
            text: text.to_owned(),
            instructions,
        }
    }

    /// The arguments of every `keyword` instruction, in order.
    pub fn all<'a>(&'a self, keyword: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.instructions
            .iter()
            .filter(move |i| i.keyword == keyword)
            .map(|i| i.args.as_str())
    }

    /// The last `keyword` (ENTRYPOINT, CMD) in exec form; an error if it
    /// is in shell form (then a shell, not the binary, gets SIGTERM).
    pub fn exec_form(&self, keyword: &str) -> Result<Option<Vec<String>>, String> {
        let Some(args) = self.all(keyword).last() else {
            return Ok(None);
        };
        serde_json::from_str(args).map(Some).map_err(|_| {
            format!(
                "{}: {keyword} {args} is not in exec form ([\"binary\", \"--flag\", ...])",
                self.name
            )
        })
    }

    /// The ports of every EXPOSE (`3001` or `3001/tcp`).
    pub fn exposed_ports(&self) -> Result<Vec<u16>, String> {
        self.all("EXPOSE")
            .flat_map(str::split_whitespace)
            .map(|port| {
                let number = port.split('/').next().unwrap_or(port);
                number
                    .parse()
                    .map_err(|_| format!("{}: EXPOSE {port} is not a port", self.name))
            })
            .collect()
    }

    /// The names every ENV sets (`ENV A=1 B=2` or `ENV A 1`).
    pub fn env_names(&self) -> Vec<String> {
        self.all("ENV")
            .flat_map(|args| {
                let words: Vec<&str> = args.split_whitespace().collect();
                match words.first() {
                    Some(first) if !first.contains('=') => vec![(*first).to_owned()],
                    _ => words
                        .iter()
                        .filter_map(|w| w.split_once('=').map(|(k, _)| k.to_owned()))
                        .collect(),
                }
            })
            .collect()
    }

    /// The paths of every VOLUME (`/data` or `["/data"]`).
    pub fn volumes(&self) -> Vec<String> {
        self.all("VOLUME")
            .flat_map(|args| {
                serde_json::from_str::<Vec<String>>(args)
                    .unwrap_or_else(|_| args.split_whitespace().map(str::to_owned).collect())
            })
            .collect()
    }
}

fn instruction(line: &str) -> Instruction {
    let line = line.trim();
    let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    Instruction {
        keyword: keyword.to_ascii_uppercase(),
        args: args.trim().to_owned(),
    }
}
