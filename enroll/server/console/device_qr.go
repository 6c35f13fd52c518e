package console

import (
	"github.com/totpbox/totpbox/enroll/server/core"

	"bytes"
	"fmt"
	"image/png"
	"net/http"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// qrPNG renders text as a QR code PNG of about size pixels a side.
func qrPNG(text string, size int) ([]byte, error) {
	code, err := qr.Encode(text, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	n := code.Bounds().Dx()
	scale := max(size/(n+8), 1)
	scaled, err := barcode.Scale(code, n*scale, n*scale)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, scaled); err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	return buf.Bytes(), nil
}

// deviceQR serves the QR code of a pending registration's otpauth URI.
// It is never cached and is gone once the device is registered.
func (s *Console) deviceQR(w http.ResponseWriter, r *http.Request, sc *scope) {
	id, err := core.PathID(r)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	dev, err := s.core.UserDevice(r.Context(), sc.user, id)
	if err != nil {
		status, msg := core.Explain(err)
		http.Error(w, msg, status)
		return
	}
	k, err := s.core.PendingKey(r.Context(), sc.user, dev)
	if err != nil {
		status, msg := core.Explain(err)
		if status >= http.StatusInternalServerError {
			s.log.Error("QR code", "device", dev.ID, "err", err)
		}
		http.Error(w, msg, status)
		return
	}
	b, err := qrPNG(k.URI(), 256)
	if err != nil {
		s.log.Error("QR code", "device", dev.ID, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}
