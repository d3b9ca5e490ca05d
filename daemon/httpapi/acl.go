package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/corral-dev/corral/daemon/acl"
	"github.com/corral-dev/corral/daemon/api"
	"github.com/corral-dev/corral/queue"
)

// ACLStore is the replicated ACL state the API reads.
type ACLStore interface {
	acl.Store
	ACLBootstrapped() bool
	ACLPolicies() []*queue.ACLPolicy
	ACLTokens() []*queue.ACLToken
}

// maxPolicyRules bounds a policy's rules text.
const maxPolicyRules = 64 << 10

// permission is what a request needs, named as the error says it.
type permission struct {
	name string
	ok   func(*acl.Authorizer) bool
}

var (
	permOperatorRead  = permission{"operator:read", (*acl.Authorizer).OperatorRead}
	permOperatorWrite = permission{"operator:write", (*acl.Authorizer).OperatorWrite}
	permAgentRead     = permission{"agent:read", (*acl.Authorizer).AgentRead}
	permAgentWrite    = permission{"agent:write", (*acl.Authorizer).AgentWrite}
	permManagement    = permission{"a management token", (*acl.Authorizer).Management}
)

func permQueueRead(q string) permission {
	return permission{fmt.Sprintf("queue:read on %q", q), func(a *acl.Authorizer) bool { return a.QueueRead(q) }}
}

func permQueueWrite(q string) permission {
	return permission{fmt.Sprintf("queue:write on %q", q), func(a *acl.Authorizer) bool { return a.QueueWrite(q) }}
}

// tokenOf returns the request's token: X-Corral-Token, else
// Authorization: Bearer.
func tokenOf(r *http.Request) string {
	if t := r.Header.Get(api.HeaderToken); t != "" {
		return t
	}
	if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// authenticate resolves the request's token; what names the permission
// the request needs, for the 401 message. With ACLs disabled everything is
// allowed. On failure it has answered 401 and returns false.
func (h *API) authenticate(w http.ResponseWriter, r *http.Request, what string) (*acl.Authorizer, bool) {
	if h.resolver == nil {
		return acl.AllowAll(), true
	}
	secret := tokenOf(r)
	if secret == "" {
		writeError(w, &httpError{code: http.StatusUnauthorized, err: fmt.Errorf("ACL token missing: this request needs %s; pass -token or CORRAL_TOKEN (X-Corral-Token or Authorization: Bearer)", what)})
		return nil, false
	}
	authz, _, err := h.resolver.Resolve(secret)
	if err != nil {
		writeError(w, &httpError{code: http.StatusUnauthorized, err: fmt.Errorf("ACL token not found: this request needs %s; check -token or CORRAL_TOKEN", what)})
		return nil, false
	}
	return authz, true
}

// allow authenticates the request and checks p; on failure it has
// answered 401 or 403 and returns false.
func (h *API) allow(w http.ResponseWriter, r *http.Request, p permission) bool {
	authz, ok := h.authenticate(w, r, p.name)
	if !ok {
		return false
	}
	return h.check(w, authz, p)
}

// check answers 403 unless authz has p.
func (h *API) check(w http.ResponseWriter, authz *acl.Authorizer, p permission) bool {
	if p.ok(authz) {
		return true
	}
	writeError(w, &httpError{code: http.StatusForbidden, err: fmt.Errorf("permission denied: this request needs %s", p.name)})
	return false
}

// need wraps a handler with a fixed permission.
func (h *API) need(p permission, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.allow(w, r, p) {
			next(w, r)
		}
	}
}

// aclEnabled answers 400 when ACLs are off on this agent.
func (h *API) aclEnabled(w http.ResponseWriter) bool {
	if h.resolver != nil {
		return true
	}
	writeError(w, badRequest("ACLs are disabled on this agent (acl { enabled = false }, or -dev)"))
	return false
}

// handleACLBootstrap serves POST /v1/acl/bootstrap: the first management
// token, once per cluster. It needs no token.
func (h *API) handleACLBootstrap(w http.ResponseWriter, r *http.Request) {
	if !h.aclEnabled(w) {
		return
	}
	if h.cfg.ACLs.ACLBootstrapped() {
		writeError(w, &httpError{code: http.StatusConflict, err: queue.ErrACLBootstrapped})
		return
	}
	tok, secret, err := newToken("Bootstrap management token", nil, true)
	if err != nil {
		writeError(w, err)
		return
	}
	h.applyACL(w, r, &queue.ACLBootstrap{Token: tok}, func() any { return tokenOut(&tok, secret) })
}

// handleACLPolicyApply serves PUT /v1/acl/policy/{name}.
func (h *API) handleACLPolicyApply(w http.ResponseWriter, r *http.Request) {
	var in api.ACLPolicy
	if err := decodeBody(w, r, maxPolicyRules+4096, &in); err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	if in.Name != "" && in.Name != name {
		writeError(w, badRequest("policy name %q in the body differs from %q in the path", in.Name, name))
		return
	}
	if !queue.ValidQueueName(name) {
		writeError(w, badRequest("policy name %q must be 1-%d characters of A-Z a-z 0-9 _ . -", truncate(name, queue.MaxQueueName), queue.MaxQueueName))
		return
	}
	if _, err := acl.Parse(name, in.Rules); err != nil {
		writeError(w, badRequest("policy %s: %s", name, strings.ReplaceAll(err.Error(), "\n", "; ")))
		return
	}
	p := queue.ACLPolicy{Name: name, Description: in.Description, Rules: in.Rules}
	h.applyACL(w, r, &queue.ACLSetPolicy{Policy: p}, func() any {
		if sp, ok := h.cfg.ACLs.ACLPolicy(name); ok {
			return policyOut(sp)
		}
		return policyOut(&p)
	})
}

// handleACLPolicies serves GET /v1/acl/policies.
func (h *API) handleACLPolicies(w http.ResponseWriter, r *http.Request) {
	out := []api.ACLPolicy{}
	for _, p := range h.cfg.ACLs.ACLPolicies() {
		out = append(out, policyOut(p))
	}
	writeJSON(w, http.StatusOK, out, h.store.Index())
}

// handleACLPolicyDelete serves DELETE /v1/acl/policy/{name}.
func (h *API) handleACLPolicyDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	h.applyACL(w, r, &queue.ACLDeletePolicy{Name: name}, func() any { return map[string]string{"deleted": name} })
}

// handleACLTokenCreate serves POST /v1/acl/token.
func (h *API) handleACLTokenCreate(w http.ResponseWriter, r *http.Request) {
	var in api.ACLTokenRequest
	if err := decodeBody(w, r, 64<<10, &in); err != nil {
		writeError(w, err)
		return
	}
	if len(in.Policies) == 0 && !in.Management {
		writeError(w, badRequest("a token needs at least one policy (-policy NAME) or -management"))
		return
	}
	if len(in.Policies) > 64 || len(in.Description) > 1024 {
		writeError(w, &httpError{code: http.StatusRequestEntityTooLarge, err: errors.New("a token takes at most 64 policies and a 1024-byte description")})
		return
	}
	tok, secret, err := newToken(in.Description, in.Policies, in.Management)
	if err != nil {
		writeError(w, err)
		return
	}
	h.applyACL(w, r, &queue.ACLSetToken{Token: tok}, func() any { return tokenOut(&tok, secret) })
}

// handleACLTokens serves GET /v1/acl/tokens (secrets are never shown).
func (h *API) handleACLTokens(w http.ResponseWriter, r *http.Request) {
	out := []api.ACLToken{}
	for _, t := range h.cfg.ACLs.ACLTokens() {
		out = append(out, tokenOut(t, ""))
	}
	writeJSON(w, http.StatusOK, out, h.store.Index())
}

// handleACLTokenDelete serves DELETE /v1/acl/token/{accessor}.
func (h *API) handleACLTokenDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accessor")
	h.applyACL(w, r, &queue.ACLDeleteToken{AccessorID: id}, func() any { return map[string]string{"deleted": id} })
}

// applyACL writes an ACL command and answers with out() after it applied.
func (h *API) applyACL(w http.ResponseWriter, r *http.Request, cmd queue.Command, out func() any) {
	res, index, err := h.writer.Write(r.Context(), cmd)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out(), index)
}

// newToken makes a token with fresh accessor and secret IDs; only the
// secret's hash goes into the command.
func newToken(desc string, policies []string, management bool) (queue.ACLToken, string, error) {
	accessor, err := acl.NewID()
	if err != nil {
		return queue.ACLToken{}, "", err
	}
	secret, err := acl.NewID()
	if err != nil {
		return queue.ACLToken{}, "", err
	}
	return queue.ACLToken{AccessorID: accessor, SecretHash: acl.HashSecret(secret), Description: desc, Policies: policies, Management: management}, secret, nil
}

func tokenOut(t *queue.ACLToken, secret string) api.ACLToken {
	out := api.ACLToken{AccessorID: t.AccessorID, SecretID: secret, Description: t.Description, Policies: t.Policies, Management: t.Management, CreateIndex: t.CreateIndex}
	if out.Policies == nil {
		out.Policies = []string{}
	}
	return out
}

func policyOut(p *queue.ACLPolicy) api.ACLPolicy {
	return api.ACLPolicy{Name: p.Name, Description: p.Description, Rules: p.Rules, ModifyIndex: p.ModifyIndex}
}

// needACL wraps an ACL management handler: ACLs must be on and the token
// a management token.
func (h *API) needACL(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.aclEnabled(w) && h.allow(w, r, permManagement) {
			next(w, r)
		}
	}
}
