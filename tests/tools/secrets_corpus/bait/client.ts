import { createHash } from "crypto";

export interface Credentials {
  username: string;
  password: string;
  token?: string;
  apiKey: string | null;
}

export async function login(password: string, otp?: string): Promise<string> {
  const token: string = await api.post("/login", { password, otp });
  const secret = process.env.SESSION_SECRET ?? "";
  localStorage.setItem("token", token);
  const headers = { Authorization: `Bearer ${token}` };
  const digest = createHash("sha256").update(secret).digest("hex");
  return digest;
}

const config = { apiKey: process.env.API_KEY, secretName: "web-credentials", tokenUrl: "https://auth.example.com/oauth/token" };
