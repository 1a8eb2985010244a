from tests.chaos.harness import main

raise SystemExit(main())
