from tinyadapt.cli import main

raise SystemExit(main())
