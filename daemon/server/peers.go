package server

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// ErrNoSuchPeer means no raft server has the given ID.
var ErrNoSuchPeer = errors.New("no such raft peer")

// ErrRemoveSelf means the leader was asked to remove itself.
var ErrRemoveSelf = errors.New("refusing to remove the leader itself; run `corral leave` on it instead")

// RemovePeer removes a raft server by ID (an operator action). Only the
// leader can; it never removes itself.
func (s *Server) RemovePeer(id string) error {
	if !s.IsLeader() {
		return fmt.Errorf("remove peer %s: %w", id, ErrNotLeader)
	}
	fut := s.raft.GetConfiguration()
	if err := fut.Error(); err != nil {
		return fmt.Errorf("read raft configuration: %w", err)
	}
	found := false
	for _, srv := range fut.Configuration().Servers {
		found = found || string(srv.ID) == id
	}
	if !found {
		return fmt.Errorf("%w with id %s", ErrNoSuchPeer, id)
	}
	if id == s.cfg.NodeID {
		return ErrRemoveSelf
	}
	if err := s.raft.RemoveServer(raft.ServerID(id), fut.Index(), 0).Error(); err != nil {
		return fmt.Errorf("remove peer %s: %w", id, mapRaftError(err))
	}
	return nil
}
