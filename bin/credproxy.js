#!/usr/bin/env node
// The published entry point runs the compiled CLI (npm run build, which npm ci runs via prepare).
import '../dist/src/cli.js';
