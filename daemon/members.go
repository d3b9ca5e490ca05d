package daemon

// nodeName returns the node name of a server ID, or the ID when unknown.
func (a *Agent) nodeName(id string) string {
	if id == a.nodeID {
		return a.cfg.NodeName
	}
	if m, ok := a.memberByID(id); ok {
		return m.Name
	}
	return id
}

// httpAddrOf returns the HTTP address a server advertises.
func (a *Agent) httpAddrOf(id string) (string, bool) {
	if id == a.nodeID {
		return a.httpAddr, true
	}
	m, ok := a.memberByID(id)
	if !ok || m.Tags["http"] == "" {
		return "", false
	}
	return m.Tags["http"], true
}

// member is the daemon's view of one gossip member.
type member struct {
	Name   string
	Addr   string
	Status string
	Tags   map[string]string
}

// memberByID finds the gossip member that advertises server ID id.
func (a *Agent) memberByID(id string) (member, bool) {
	for _, m := range a.members() {
		if m.Tags["id"] == id {
			return m, true
		}
	}
	return member{}, false
}

// members lists gossip members; empty until discovery is running.
func (a *Agent) members() []member {
	if a.membersFn == nil {
		return nil
	}
	return a.membersFn()
}

// httpAddrOfNode returns the HTTP address of the node with that name.
func (a *Agent) httpAddrOfNode(name string) (string, bool) {
	if name == a.cfg.NodeName {
		return a.httpAddr, true
	}
	for _, m := range a.members() {
		if m.Name == name && m.Tags["http"] != "" {
			return m.Tags["http"], true
		}
	}
	return "", false
}
