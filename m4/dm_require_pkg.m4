# m4/dm_require_pkg.m4 - DM_REQUIRE_PKG(VAR, MODULE, DEBIAN-PACKAGE): a
# library found by pkg-config (VAR_CFLAGS, VAR_LIBS), or configure stops
# and names the Debian package that brings it.
AC_DEFUN([DM_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found: install the Debian package $3 (apt-get install $3)])])
])
