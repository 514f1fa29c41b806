/// The release version: the one place it is written (the Makefile and the
/// Debian package read it from here).
public let pgsqlchkVersion = "0.1.0"
