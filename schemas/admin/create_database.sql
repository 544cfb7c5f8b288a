-- The database a server URL names, created on first use; {database} is the URL's path.
CREATE DATABASE IF NOT EXISTS `{database}`
