package check

// Answer is what a success's body says by the API's pointers, for a reader that judges nothing,
// such as the report's charts: the entity's id, the credential, and whether it was created.
type Answer struct {
	// ID is the entity's id; HasID says the body holds a string there.
	ID    string
	HasID bool
	// Credential is the credential; HasCredential says the API has one and the body holds a
	// string there.
	Credential    string
	HasCredential bool
	// Created is the created flag, or, for an API without one whose status tells a new entity,
	// whether the status is the new outcome's; nil when the answer does not say.
	Created *bool
}

// AnswerOf reads the 2xx answer status, body by a's pointers, as the rules read it; a body that
// is no JSON object says nothing but what its status tells.
func (a *API) AnswerOf(status int, body string) Answer {
	var ans Answer
	if a.statusTellsCreated() {
		ans.Created = new(status == a.New.Status)
	}
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return ans
	}
	var found, ok bool
	ans.ID, found, ok = o.stringAt(body, a.ID)
	ans.HasID = found && ok
	if a.Credential != "" {
		ans.Credential, found, ok = o.stringAt(body, a.Credential)
		ans.HasCredential = found && ok
	}
	if a.Created != "" {
		if raw, found := o.lookup(body, a.Created); found {
			if b, ok := boolValue(raw); ok {
				ans.Created = &b
			}
		}
	}
	return ans
}

// ErrorCodeOf returns the error code of a non-2xx body (the API's ErrorCode pointer); ok false
// when the body holds no string there.
func (a *API) ErrorCodeOf(body string) (code string, ok bool) {
	var buf [8]member
	o, err := readObject(body, buf[:0])
	if err != nil {
		return "", false
	}
	code, found, isString := o.stringAt(body, a.ErrorCode)
	return code, found && isString
}
