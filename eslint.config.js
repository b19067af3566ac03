'use strict';
// ESLint's configuration (flat form), used by scripts/lint.js with --max-warnings 0: every
// rule below is an error or off, never a warning left to pile up.
//
// ESLint's recommended rules, plus the ones that fit this codebase: CommonJS modules in
// strict mode on Node 18 and later (and a few ES modules, .mjs), `const` unless a binding is
// reassigned, === except for the `== null` idiom, errors that are Error objects. The test
// suites get Jest's globals; only lib/ is refused console output, since a library must not
// write to its user's logs.
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  {
    ignores: ['build/', 'build-*/', 'coverage/', 'node_modules/', '.bench-*/'],
  },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      // What Node 18 (package.json's engines) runs without flags.
      ecmaVersion: 2022,
      sourceType: 'commonjs',
      globals: { ...globals.node },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      strict: ['error', 'global'],
      'no-var': 'error',
      'prefer-const': ['error', { destructuring: 'all' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-throw-literal': 'error',
      'prefer-promise-reject-errors': 'error',
      'no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-shadow-restricted-names': 'error',
      'no-new-wrappers': 'error',
      'no-new-func': 'error',
      'no-eval': 'error',
      'no-useless-concat': 'error',
      'no-return-assign': 'error',
      'no-self-compare': 'error',
      'no-template-curly-in-string': 'error',
      'no-unreachable-loop': 'error',
    },
  },
  {
    // ES modules: the generated entries in lib/esm/ and the test fixtures that import them.
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module' },
    rules: { strict: 'off' },
  },
  {
    files: ['test/**/*.js'],
    languageOptions: {
      globals: { ...globals.jest },
    },
  },
  {
    files: ['lib/**/*.js', 'lib/**/*.mjs'],
    rules: {
      'no-console': 'error',
    },
  },
];
