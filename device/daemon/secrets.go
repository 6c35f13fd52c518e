package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/totpbox/totpbox/device/tpm"
	"github.com/totpbox/totpbox/device/uplink"
	"github.com/totpbox/totpbox/device/vault"
)

// SoftwareWarning is what totpd says, at start and in its status, when
// the vault key is a file on the SD card.
const SoftwareWarning = "secrets: software key file — a copy of the SD card copies every account"

// Secrets is an appliance's secrets mode and its TPM, if any. A nil
// *Secrets is software mode without a TPM.
type Secrets struct {
	mu     sync.Mutex
	tpm    *tpm.TPM // open in tpm mode, and in auto mode whenever present
	mode   string   // as configured: tpm, software or auto
	device string
	inTPM  bool // the vault key is sealed to the TPM
	log    *slog.Logger
}

// OpenSecrets opens the TPM at device that mode (tpm, software or auto)
// asks for. In auto mode a present TPM is opened even when the vault
// still has a software key file, so that `totpctl secrets migrate` can
// move it in. Close closes the TPM.
func OpenSecrets(mode, device string, log *slog.Logger) (*Secrets, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Secrets{mode: mode, device: device, log: log}
	switch mode {
	case SecretsSoftware:
		return s, nil
	case SecretsAuto:
		if !tpm.Present(device) {
			log.Info("no TPM found", "device", device)
			return s, nil
		}
	case SecretsTPM:
	default:
		return nil, fmt.Errorf("secrets: %q is not one of tpm, software, auto", mode)
	}
	t, err := tpm.Open(device)
	if err != nil {
		return nil, fmt.Errorf("secrets: %s: %w", mode, err)
	}
	s.tpm = t
	return s, nil
}

// VaultOptions returns opts for the vault whose key file is keyFile, with
// the TPM when the key file is sealed to it, or not made yet and no
// passphrase is set, or when a move of a software key into the TPM was
// cut short (vault.MigrationPending), in the auto and tpm modes alike.
func (s *Secrets) VaultOptions(opts vault.Config, keyFile string) (vault.Config, error) {
	if s == nil || s.tpm == nil {
		return opts, nil
	}
	kind, err := vault.KeyFileKind(keyFile)
	if err != nil {
		return opts, err
	}
	pending, err := vault.MigrationPending(keyFile)
	if err != nil {
		return opts, err
	}
	passphrase := opts.Passphrase != nil || opts.PassphraseFile != "" || opts.PassphraseEnv != ""
	switch {
	case pending && kind == vault.KeySoftware:
		// `totpctl secrets migrate` was cut short: the vault finishes it
		// with the TPM.
		s.log.Warn("finishing a move of the vault key into the TPM that was cut short", "key_file", keyFile)
		opts.TPM = s.tpm
		s.inTPM = true
	case s.mode == SecretsTPM && (kind == vault.KeySoftware || kind == vault.KeyPassphrase):
		return opts, fmt.Errorf("secrets: tpm, but the vault key is a %s key file: set secrets to auto, start totpd and run `totpctl secrets migrate`", kind)
	case kind == vault.KeyTPM, kind == vault.KeyNone && !passphrase:
		opts.TPM = s.tpm
		s.inTPM = true
	default:
		s.log.Warn("a TPM is present but the vault key is a " + string(kind) + " key file; run `totpctl secrets migrate` to seal it to the TPM")
	}
	return opts, nil
}

// LogMode logs the mode the vault opened in, plainly in software mode.
func (s *Secrets) LogMode() {
	if s.Mode() == SecretsSoftware {
		s.logger().Warn(SoftwareWarning)
		return
	}
	s.log.Info("secrets: TPM: the vault key is sealed to it and it computes the codes", "device", s.device)
}

func (s *Secrets) logger() *slog.Logger {
	if s == nil || s.log == nil {
		return slog.Default()
	}
	return s.log
}

// sealer returns what the sync client seals its identity with.
func (s *Secrets) sealer() uplink.Sealer {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inTPM {
		return nil
	}
	return s.tpm
}

// Mode returns "tpm" when the vault key is sealed to the TPM, else
// "software".
func (s *Secrets) Mode() string {
	if s == nil {
		return SecretsSoftware
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inTPM {
		return SecretsTPM
	}
	return SecretsSoftware
}

// status reports the mode and which accounts are held in the TPM.
func (s *Secrets) status(v *vault.Vault) map[string]any {
	st := map[string]any{"mode": s.Mode()}
	if s.Mode() == SecretsSoftware {
		st["warning"] = SoftwareWarning
		if s != nil && s.tpm != nil {
			st["tpm"] = s.device + " (present: run `totpctl secrets migrate`)"
		}
		return st
	}
	st["tpm"] = s.device
	var in, out []string
	for _, a := range v.List() {
		switch {
		case a.InTPM:
			in = append(in, a.Name())
		case a.State == vault.Pending:
			out = append(out, a.Name()+" (pending)")
		default:
			out = append(out, a.Name()+" ("+a.Key.Algorithm.String()+", under the sealed vault key)")
		}
	}
	st["in_tpm"], st["not_in_tpm"] = in, out
	return st
}

// migrate moves a software-mode vault and identity into the TPM.
func (s *Secrets) migrate(v *vault.Vault, syncDir string) (map[string]any, error) {
	if s == nil || s.tpm == nil {
		return nil, errors.New("no TPM in use: fit the TPM module, set secrets to auto (or tpm) and restart totpd, then run migrate again")
	}
	if s.Mode() == SecretsTPM {
		return nil, errors.New("the vault is already sealed to the TPM")
	}
	if err := v.MigrateToTPM(s.tpm); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.inTPM = true
	s.mu.Unlock()
	if syncDir != "" {
		if err := uplink.SealIdentity(syncDir, s.tpm); err != nil {
			return nil, err
		}
	}
	return s.status(v), nil
}

// Close closes the TPM.
func (s *Secrets) Close() error {
	if s == nil || s.tpm == nil {
		return nil
	}
	return s.tpm.Close()
}
