/*
 * version.h -- the one version string of Distribuerad.
 *
 * `distribuerad -version`, the start-up log line and the version label of
 * distribuerad_build_info in /metrics print it; the Dockerfile's VERSION
 * default and CHANGELOG.md's latest release must say the same (checked by
 * tests/blackbox/test_version.py). Semantic Versioning.
 */
#ifndef VERSION_H
#define VERSION_H

#define DISTRIBUERAD_VERSION "0.1.0"

#endif
