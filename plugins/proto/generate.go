// Package proto holds the gRPC protocol spoken between the Corral host and its
// worker plugins: worker.proto and the code generated from it.
//
// Regenerate with `go generate ./plugins/proto` (tool versions in README.md).
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative worker.proto
//go:generate protoc --python_out=../sdk/python/corral_plugin worker.proto
