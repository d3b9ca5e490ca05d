//go:build !linux

package main

import "errors"

// Network namespaces are Linux only: elsewhere the harness runs on
// loopback with process faults.

func netnsAvailable() error { return errors.New("network namespaces need Linux") }

func newNetnsNet(int, func(string, ...any)) (network, error) {
	return nil, netnsAvailable()
}
