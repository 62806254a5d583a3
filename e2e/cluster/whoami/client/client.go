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

// Get sends one GET to url and returns the response's status, headers and the first limit bytes
// of its body (the rest is drained): the one request both the smoke check and the token
// service's served-everywhere wait make.
func Get(ctx context.Context, hc *http.Client, url string, limit int64) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return resp.StatusCode, resp.Header, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}

// Ask sends one GET to url and returns the pod name the whoami server answered with.
func Ask(ctx context.Context, hc *http.Client, url string) (string, error) {
	status, _, body, err := Get(ctx, hc, url, 1024)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("status %d", status)
	}
	pod := strings.TrimSpace(string(body))
	if pod == "" {
		return "", errors.New("empty answer")
	}
	return pod, nil
}
