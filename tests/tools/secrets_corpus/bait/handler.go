package auth

type Config struct {
	Token       string `json:"token" yaml:"token"`
	Password    string `json:"password,omitempty"`
	SecretKey   []byte `json:"-"`
	TokenSource oauth2.TokenSource
}

func (c *Config) Authorize(req *http.Request) {
	req.Header.Set("Authorization", "token "+c.Token)
	password := os.Getenv("DB_PASSWORD")
	secret := []byte(c.SecretKey)
	token, err := c.TokenSource.Token()
	_ = password; _ = secret; _ = token; _ = err
}
