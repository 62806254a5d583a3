// Package client asks a whoami server which pod answered; the smoke check and whoami's own client
// mode share it.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Ask sends one GET to url and returns the pod name the whoami server answered with.
func Ask(ctx context.Context, hc *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	pod := strings.TrimSpace(string(body))
	if pod == "" {
		return "", errors.New("empty answer")
	}
	return pod, nil
}
