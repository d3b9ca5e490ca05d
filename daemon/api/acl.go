package api

import (
	"context"
	"net/http"
	"net/url"
)

// ACLPolicy is an ACL policy: a name and its HCL rules.
type ACLPolicy struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Rules       string `json:"rules"`
	ModifyIndex uint64 `json:"modify_index,omitempty"`
}

// ACLToken is a token. SecretID is only ever shown once, in the answer
// that created it.
type ACLToken struct {
	AccessorID  string   `json:"accessor_id"`
	SecretID    string   `json:"secret_id,omitempty"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies"`
	Management  bool     `json:"management"`
	CreateIndex uint64   `json:"create_index,omitempty"`
}

// ACLTokenRequest asks for a new token.
type ACLTokenRequest struct {
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies"`
	Management  bool     `json:"management,omitempty"`
}

// ACLBootstrap makes the first management token; it works once per
// cluster.
func (c *Client) ACLBootstrap(ctx context.Context) (*ACLToken, error) {
	var out ACLToken
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/acl/bootstrap"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLPolicyApply creates or replaces a policy.
func (c *Client) ACLPolicyApply(ctx context.Context, p ACLPolicy) (*ACLPolicy, error) {
	var out ACLPolicy
	if _, err := c.call(ctx, request{method: http.MethodPut, path: "/v1/acl/policy/" + url.PathEscape(p.Name), body: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLPolicies lists the policies.
func (c *Client) ACLPolicies(ctx context.Context) ([]ACLPolicy, error) {
	var out []ACLPolicy
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/acl/policies"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ACLPolicyDelete deletes a policy.
func (c *Client) ACLPolicyDelete(ctx context.Context, name string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/acl/policy/" + url.PathEscape(name)}, nil)
	return err
}

// ACLTokenCreate creates a token; the answer carries its secret.
func (c *Client) ACLTokenCreate(ctx context.Context, req ACLTokenRequest) (*ACLToken, error) {
	var out ACLToken
	if _, err := c.call(ctx, request{method: http.MethodPost, path: "/v1/acl/token", body: req}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ACLTokens lists the tokens (without secrets).
func (c *Client) ACLTokens(ctx context.Context) ([]ACLToken, error) {
	var out []ACLToken
	if _, err := c.call(ctx, request{method: http.MethodGet, path: "/v1/acl/tokens"}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ACLTokenDelete deletes the token with that accessor ID.
func (c *Client) ACLTokenDelete(ctx context.Context, accessor string) error {
	_, err := c.call(ctx, request{method: http.MethodDelete, path: "/v1/acl/token/" + url.PathEscape(accessor)}, nil)
	return err
}
