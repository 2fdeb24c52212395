package backend_test

// secret is a password distinctive enough that finding it in any output
// means a secret leaked.
const secret = "s3cr3tpw"

// env returns a getenv that reads vars and nothing else, so the tests never
// depend on the environment they run in.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}
