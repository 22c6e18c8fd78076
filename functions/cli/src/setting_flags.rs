//! The command line's flags for settings, built from their one declaration in
//! [`source_io::settings`]. A flag's value is not parsed here: it goes over the environment into
//! [`Config::from_lookup`], so a flag and its variable are validated by the same code and
//! an error names both.

use std::collections::HashMap;
use std::marker::PhantomData;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};

use source_io::config::{Config, ConfigError};
use source_io::settings::{self, Fallback, Flag, Mode, Setting};

/// Which settings a command takes as flags.
pub trait FlagGroup {
    /// The settings, each with a [`Flag::Long`] or a [`Flag::Previous`].
    const SETTINGS: &'static [Setting];
}

/// The settings of `serve`.
#[derive(Debug, Clone)]
pub struct Serve;

impl FlagGroup for Serve {
    const SETTINGS: &'static [Setting] = &[
        settings::LAKE_DIR,
        settings::WRITE_KEY,
        settings::WRITE_KEY_PREVIOUS,
        settings::SEGMENT_WRITE_KEY,
        settings::SEGMENT_WRITE_KEY_PREVIOUS,
        settings::SCHEMA_NAME,
        settings::TIMESTAMP_TOLERANCE_SECS,
    ];
}

/// The settings of `pull` and `backfill`.
#[derive(Debug, Clone)]
pub struct Pull;

impl FlagGroup for Pull {
    const SETTINGS: &'static [Setting] = &[
        settings::LAKE_DIR,
        settings::PULL_CHANNELS,
        settings::PULL_REQUESTS_PER_MINUTE,
    ];
}

/// The settings of `compact`.
#[derive(Debug, Clone)]
pub struct Compact;

impl FlagGroup for Compact {
    const SETTINGS: &'static [Setting] = &[
        settings::LAKE_DIR,
        settings::SCHEMA_NAME,
        settings::GLUE_DATABASE,
        settings::RAW_RETENTION_DAYS,
    ];
}

/// The settings of `reconcile`.
#[derive(Debug, Clone)]
pub struct Reconcile;

impl FlagGroup for Reconcile {
    const SETTINGS: &'static [Setting] = &[settings::LAKE_DIR];
}

/// The values given as flags, by variable name.
#[derive(Debug, Clone)]
pub struct SettingFlags<G> {
    given: HashMap<&'static str, String>,
    group: PhantomData<G>,
}

impl<G> SettingFlags<G> {
    /// Whether `setting` was given on the command line.
    pub fn gave(&self, setting: &Setting) -> bool {
        self.given.contains_key(setting.var)
    }

    /// The configuration: these flags over `environment`, read and validated once.
    pub fn config(
        &self,
        environment: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::from_lookup(Mode::Local, |var| {
            self.given.get(var).cloned().or_else(|| environment(var))
        })
    }

    /// The flags' values by variable, for a test.
    #[cfg(test)]
    fn given(&self) -> &HashMap<&'static str, String> {
        &self.given
    }
}

/// The help line: the setting's own, its variable and its default.
fn help_of(setting: &Setting) -> String {
    let default = match setting.default {
        Fallback::Value(value) => value,
        Fallback::ByMode { local, .. } => local.unwrap_or("none"),
        Fallback::Described(text) => text,
    };
    format!(
        "{} [env: {}] [default: {default}]",
        setting.help, setting.var
    )
}

/// The flag of `setting`, if it has one.
fn flag_name(setting: &Setting) -> Option<&'static str> {
    match setting.flag {
        Flag::None => None,
        Flag::Long(name) | Flag::Previous { name, .. } => Some(name),
    }
}

impl<G: FlagGroup> clap::Args for SettingFlags<G> {
    fn augment_args(cmd: Command) -> Command {
        G::SETTINGS.iter().fold(cmd, |cmd, setting| {
            let Some(name) = flag_name(setting) else {
                return cmd;
            };
            cmd.arg(
                Arg::new(setting.var)
                    .long(name)
                    .value_name("VALUE")
                    .num_args(1)
                    .action(ArgAction::Set)
                    .help(help_of(setting)),
            )
        })
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<G: FlagGroup> FromArgMatches for SettingFlags<G> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = HashMap::new();
        for setting in G::SETTINGS {
            if let Some(value) = matches.get_one::<String>(setting.var) {
                given.insert(setting.var, value.clone());
            }
        }
        // A current key given on the command line replaces the environment's pair: without
        // its `--previous-...` flag, no previous key is left behind from the environment.
        for setting in G::SETTINGS {
            if let Flag::Previous { current, .. } = setting.flag {
                let current_given = G::SETTINGS
                    .iter()
                    .any(|s| s.flag == Flag::Long(current) && given.contains_key(s.var));
                if current_given {
                    given.entry(setting.var).or_default();
                }
            }
        }
        Ok(Self {
            given,
            group: PhantomData,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Serving {
        #[command(flatten)]
        settings: SettingFlags<Serve>,
    }

    fn parse(args: &[&str]) -> Result<Serving, clap::Error> {
        Serving::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
    }

    #[test]
    fn the_previous_key_has_a_flag_of_its_own() {
        let parsed = parse(&[
            "--write-key",
            "current-key-0123456",
            "--previous-write-key",
            "previous-key-654321",
            "--schema",
            "klaviyo_eu",
        ])
        .unwrap();
        let given = parsed.settings.given();
        assert_eq!(given["WRITE_KEY"], "current-key-0123456");
        assert_eq!(given["WRITE_KEY_PREVIOUS"], "previous-key-654321");
        assert_eq!(given["SCHEMA_NAME"], "klaviyo_eu");
        assert!(!given.contains_key("SEGMENT_WRITE_KEY_PREVIOUS"));
        // The old way, the flag twice, is refused rather than read as the previous key.
        assert!(parse(&["--write-key", "a", "--write-key", "b"]).is_err());
    }

    #[test]
    fn a_current_key_flag_alone_leaves_no_previous_key_from_the_environment() {
        let parsed = parse(&["--write-key", "current-key-0123456"]).unwrap();
        let env = |var: &str| match var {
            "WRITE_KEY" => Some("env-current-key-000".to_owned()),
            "WRITE_KEY_PREVIOUS" => Some("env-previous-key-00".to_owned()),
            _ => None,
        };
        let config = parsed.settings.config(env).unwrap();
        assert_eq!(config.write_keys.len(), 1);
        assert_eq!(config.write_keys[0].expose_secret(), "current-key-0123456");
    }

    #[test]
    fn a_flag_wins_over_the_environment_and_is_validated_like_it() {
        let parsed = parse(&["--schema", "from_flag"]).unwrap();
        let env = |var: &str| match var {
            "SCHEMA_NAME" => Some("from_env".to_owned()),
            "TIMESTAMP_TOLERANCE_SECS" => Some("60".to_owned()),
            _ => None,
        };
        let config = parsed.settings.config(env).unwrap();
        assert_eq!(config.schema, "from_flag");
        assert_eq!(
            config.timestamp_tolerance,
            std::time::Duration::from_secs(60)
        );

        let err = parse(&["--schema", "Not-Valid"])
            .unwrap()
            .settings
            .config(|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("SCHEMA_NAME (--schema) must be"), "{err}");
    }

    #[test]
    fn help_names_the_variable_and_the_default() {
        let help = help_of(&settings::SCHEMA_NAME);
        assert_eq!(
            help,
            "Warehouse schema name [env: SCHEMA_NAME] [default: klaviyo]"
        );
    }
}
