# pressd: build and install.
#   make                  release build, Swift runtime linked statically (.build/dist)
#   make install          install under $(PREFIX) (default /usr/local), honouring DESTDIR
#   make test             the whole test suite (same as scripts/test)
#   make uninstall
PREFIX      ?= /usr/local
DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
UDEVDIR     ?= /lib/udev/rules.d
BINDIR       = $(PREFIX)/bin
MANDIR       = $(PREFIX)/share/man/man1
DOCDIR       = $(PREFIX)/share/doc/pressd
SWIFT       ?= swift
BUILD        = $(shell $(SWIFT) build -c release --show-bin-path)
# The installed binaries carry the Swift standard library and Foundation: a target
# machine needs only Debian's runtime packages (docs/operations.md), no toolchain.
STATIC       = --static-swift-stdlib
DIST         = .build/dist
MANOUT       = .build/plugins/GenerateManual/outputs

.PHONY: all build test man completions install uninstall

all: build

# Copied to $(DIST) right after linking, so that a later `swift build -c release`
# without $(STATIC) cannot swap them for dynamically linked ones.
build:
	scripts/deps --no-test-peer
	$(SWIFT) build -c release $(STATIC) --product pressd
	$(SWIFT) build -c release $(STATIC) --product pressctl
	mkdir -p $(DIST)
	install -m 0755 $(BUILD)/pressd $(BUILD)/pressctl $(DIST)/
	@if ldd $(DIST)/pressd $(DIST)/pressctl | grep -E 'libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|not found'; then \
	    echo "make: $(DIST) binaries need the libraries above (Swift runtime not linked statically)" >&2; exit 1; fi

test:
	scripts/test

# The plugin builds every product first; in debug (what the tests build anyway): a
# release build without $(STATIC) would rebuild all of .build/release. The pages only
# depend on the argument parser's help text, not on the configuration.
man:
	$(SWIFT) package generate-manual --configuration debug

completions: build
	mkdir -p .build/completions
	$(DIST)/pressctl --generate-completion-script bash > .build/completions/pressctl.bash
	$(DIST)/pressctl --generate-completion-script zsh > .build/completions/_pressctl
	$(DIST)/pressctl --generate-completion-script fish > .build/completions/pressctl.fish

install: build man completions
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/pressd/programs \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(UDEVDIR) \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(DIST)/pressd $(DIST)/pressctl $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MANOUT)/pressd/pressd.1 $(MANOUT)/pressctl/pressctl.1 $(DESTDIR)$(MANDIR)/
	install -m 0644 systemd/pressd.service systemd/pressd.socket $(DESTDIR)$(UNITDIR)/
	sed -i 's|/usr/local/bin/pressd|$(BINDIR)/pressd|; s|/usr/local/share/doc/pressd|$(DOCDIR)|' \
	    $(DESTDIR)$(UNITDIR)/pressd.service $(DESTDIR)$(UNITDIR)/pressd.socket
	install -m 0644 systemd/pressd.sysusers $(DESTDIR)$(SYSUSERSDIR)/pressd.conf
	install -m 0644 systemd/pressd.tmpfiles $(DESTDIR)$(TMPFILESDIR)/pressd.conf
	install -m 0644 systemd/60-pressd-gpio.rules $(DESTDIR)$(UDEVDIR)/
	test -e $(DESTDIR)$(SYSCONFDIR)/pressd/pressd.toml || install -m 0640 config/pressd.toml $(DESTDIR)$(SYSCONFDIR)/pressd/pressd.toml
	install -m 0644 config/programs/*.toml $(DESTDIR)$(SYSCONFDIR)/pressd/programs/
	install -m 0644 .build/completions/pressctl.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/pressctl
	install -m 0644 .build/completions/_pressctl $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_pressctl
	install -m 0644 .build/completions/pressctl.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/pressctl.fish
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pressd $(DESTDIR)$(BINDIR)/pressctl $(DESTDIR)$(MANDIR)/pressd.1 $(DESTDIR)$(MANDIR)/pressctl.1
	rm -f $(DESTDIR)$(UNITDIR)/pressd.service $(DESTDIR)$(UNITDIR)/pressd.socket $(DESTDIR)$(SYSUSERSDIR)/pressd.conf
	rm -f $(DESTDIR)$(TMPFILESDIR)/pressd.conf $(DESTDIR)$(UDEVDIR)/60-pressd-gpio.rules
	rm -rf $(DESTDIR)$(DOCDIR)
