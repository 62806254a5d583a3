package history

// KeyTenantMemberBefore is the JSON member that held a request's key tenant (Op.KeyTenant) in
// the files the suite saved while the token service was its only target: ops.jsonl still writes
// it, and check.Request wrote it into violations.json before it wrote key_tenant. A reader of
// an older file accepts it, so that its runs load and re-judge as they were judged.
const KeyTenantMemberBefore = "key_merchant"
