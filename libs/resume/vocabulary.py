"""The built-in skills vocabulary and word-boundary-aware skill matching.

Skills match as whole terms only: "Go" is not found in "good", "C" not in "C++" or "C-level",
"R" not in "React" or "R&D", and "js" not in "Node.js". Names that double as everyday English
words ("Go", "Swift", "Spark", "Lean", "REST", ...) match only in their usual capitalisation,
trading an occasional miss for far fewer false positives in free-text postings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import NamedTuple

# One entry per skill: the canonical name, then its aliases, separated by "|"; entries are
# separated by ";". Bare words that are mostly not skills in job ads ("sales", "security",
# "communication", "node") are deliberately absent: they would flood postings with noise.
_VOCABULARY_TEXT = """
Python|python3; Java; JavaScript|js|ecmascript; TypeScript|ts; Go|golang; Rust; C; C++|cpp;
C#|csharp|c sharp; Ruby; PHP; Kotlin; Swift; Objective-C|objc; Scala; R; Perl; Haskell; Elixir;
Erlang; Clojure; F#; Dart; Lua; MATLAB; Bash|shell scripting; PowerShell; SQL; NoSQL; PL/SQL;
T-SQL; Groovy; Fortran; COBOL; Solidity; Zig; OCaml; Assembly|assembly language; HTML|html5;
CSS|css3; React|react.js|reactjs; Angular|angularjs|angular.js; Vue.js|vue|vuejs; Svelte;
Next.js|nextjs; Nuxt.js|nuxt|nuxtjs; Redux; jQuery; Tailwind CSS|tailwind; Sass|scss; Webpack;
Vite; Babel; Storybook; GraphQL; REST|rest api|rest apis|restful|restful apis; gRPC;
Protocol Buffers|protobuf|protobufs; WebSockets|websocket; OpenAPI|swagger; SOAP;
Web Accessibility|a11y|wcag; Responsive Design; Node.js|nodejs; Express|express.js|expressjs;
NestJS; Django; Flask; FastAPI; Spring Framework|Spring; Spring Boot; Ruby on Rails|Rails|ror;
Laravel; Symfony; ASP.NET|asp.net core; .NET|dotnet|.net core; Gin; Celery; SQLAlchemy;
Hibernate; asyncio; Pydantic; PostgreSQL|postgres|psql; MySQL; MariaDB; SQLite;
Microsoft SQL Server|sql server|mssql; Oracle Database|oracle db; MongoDB|mongo; Redis;
Elasticsearch|elastic search; OpenSearch; Cassandra|apache cassandra; DynamoDB;
Cosmos DB|cosmosdb; Neo4j; ClickHouse; Snowflake; BigQuery; Redshift; Databricks; Memcached;
CockroachDB; Firebase; Supabase; InfluxDB; TimescaleDB; pgvector; Pinecone; Kafka|apache kafka;
Kafka Streams; RabbitMQ; NATS; Amazon SQS|sqs; Amazon SNS|sns; Google Pub/Sub|pub/sub|pubsub;
Apache Pulsar|pulsar; Amazon Kinesis|kinesis; ZeroMQ; MQTT; Apache Flink|flink;
Apache Spark|Spark; PySpark; Hadoop; Apache Airflow|airflow; dbt; Apache Beam; Dagster;
Prefect; ETL|elt; Data Warehousing|data warehouse; Data Modeling|data modelling; Big Data;
AWS|amazon web services; Google Cloud|gcp|google cloud platform; Azure|microsoft azure;
AWS Lambda; Amazon EC2|ec2; Amazon S3|s3; Amazon ECS|ecs; Amazon EKS|eks; Amazon RDS|rds;
CloudFormation; Cloudflare; Heroku; Vercel; Netlify; DigitalOcean; Serverless; OpenStack; GKE;
AKS; Docker; Kubernetes|k8s; Helm; Terraform; Pulumi; Ansible; Chef; Puppet; Jenkins;
GitHub Actions; GitLab CI|gitlab ci/cd; CircleCI; Travis CI; Argo CD|argocd;
CI/CD|cicd|continuous integration|continuous delivery|continuous deployment; Git; GitHub;
GitLab; Bitbucket; Linux; Unix; Nginx; HAProxy; Envoy; Istio; Linkerd; Service Mesh;
Prometheus; Grafana; Datadog; New Relic; Splunk; ELK Stack|elk; OpenTelemetry|otel; Jaeger;
Sentry; PagerDuty; Observability; Site Reliability Engineering|sre; Infrastructure as Code|iac;
Vagrant; Packer; Consul; HashiCorp Vault|Vault; Microservices|microservice|micro-services;
Distributed Systems; Event-Driven Architecture|event-driven; System Design; Load Balancing;
Computer Networking|networking; TCP/IP; DNS; Concurrency; Multithreading|multi-threading;
Performance Tuning|performance optimization;
Cybersecurity|cyber security|information security|infosec; OAuth|oauth2|oauth 2.0;
OpenID Connect|oidc; JWT; Single Sign-On|sso; IAM; Penetration Testing|pentesting|pen testing;
OWASP; Encryption; PKI; SIEM; SOC 2|soc2; ISO 27001; GDPR; HIPAA; PCI DSS; Zero Trust;
Threat Modeling|threat modelling; Vulnerability Management; Network Security;
Application Security|appsec; DevSecOps; Unit Testing|unit tests; Test-Driven Development|tdd;
BDD|behavior-driven development; pytest; JUnit; Jest; Mocha; Cypress; Selenium; Playwright;
Integration Testing|integration tests; Load Testing; Test Automation|automated testing;
Quality Assurance|qa; Machine Learning|ml; Deep Learning; Artificial Intelligence|AI;
Natural Language Processing|nlp; Computer Vision; Large Language Models|llm|llms;
Generative AI|genai|gen ai; Prompt Engineering; Retrieval-Augmented Generation|rag; MLOps;
TensorFlow; PyTorch; Keras; scikit-learn|sklearn; pandas; NumPy; SciPy; Jupyter; Matplotlib;
Hugging Face|huggingface; LangChain; XGBoost; LightGBM; MLflow; Kubeflow;
SageMaker|amazon sagemaker; Vertex AI; Vector Databases|vector database; Feature Engineering;
Reinforcement Learning; Time Series|time-series analysis;
Recommender Systems|recommendation systems; Data Science; Data Analysis|data analytics;
Data Engineering; Data Visualization|data visualisation; Statistics;
A/B Testing|ab testing|a/b tests; Tableau; Power BI|powerbi; Looker; Excel; Google Analytics;
iOS; Android; React Native; Flutter; SwiftUI; Jetpack Compose; Xamarin; Embedded Systems; RTOS;
FPGA; Verilog; VHDL; Firmware; IoT|internet of things; Robotics; ROS; CUDA; OpenCV; Unity;
Unreal Engine; Blockchain; Ethereum; Web3; Windows Server; Active Directory; VMware;
Virtualization|virtualisation; Agile; Scrum; Kanban; Lean; DevOps; Code Review|code reviews;
Pair Programming; Domain-Driven Design|ddd; Object-Oriented Programming|oop;
Functional Programming; Design Patterns; API Design; Software Architecture; Technical Writing;
Mentoring|mentorship; Technical Leadership; Team Leadership; People Management|team management;
Incident Management|incident response; On-Call|on call; Project Management; Product Management;
Program Management; Stakeholder Management; Product Roadmaps|roadmapping; Business Analysis;
Requirements Gathering; Budgeting; Forecasting; Financial Modeling|financial modelling;
Accounting; Bookkeeping; Business Development; Account Management; B2B Sales; Customer Success;
Customer Service; CRM; Salesforce; HubSpot; SAP; Jira; Confluence; Notion; Asana; Trello;
Microsoft Office|ms office; Google Workspace|g suite; Digital Marketing; Content Marketing;
SEO|search engine optimization|search engine optimisation; SEM; Social Media Marketing;
Email Marketing; Copywriting; Public Relations; Brand Management; Market Research;
Growth Marketing; Marketing Automation; Negotiation; Public Speaking; Recruiting;
Change Management; Risk Management; Regulatory Compliance; Operations Management;
Supply Chain Management|supply chain; Procurement; Six Sigma|lean six sigma; PMP; PRINCE2;
ITIL; UX Design|ux|user experience design; UI Design|ui; User Research; Figma; Sketch;
Adobe Photoshop|photoshop; Adobe Illustrator|illustrator; Adobe XD; Prototyping; Wireframing;
Design Systems|design system; OKRs|okr; P&L Management|p&l; Strategic Planning;
Localization|localisation|l10n; Internationalization|internationalisation|i18n
"""

# Forms that are also common English words (or initials): matched case-sensitively.
_CASE_SENSITIVE_TEXT = """Go C R Swift Rust Dart Zig Groovy Assembly REST SOAP Spring Rails Express
Gin NATS Spark Helm Chef Puppet Consul Vault Envoy AI ROS Unity Lean Excel SAP Notion Sketch SEM"""
_CASE_SENSITIVE = frozenset(_CASE_SENSITIVE_TEXT.split())
# Very short names: a hyphen, ampersand or apostrophe next to them ("C-level", "R&D",
# "go-to-market"), or "Series" before them, means they are not the skill.
_STRICT = frozenset({"C", "R", "Go"})


def _parse(text: str) -> dict[str, tuple[str, ...]]:
    vocab: dict[str, tuple[str, ...]] = {}
    for entry in text.split(";"):
        forms = [" ".join(form.split()) for form in entry.split("|")]
        forms = [form for form in forms if form]
        if forms:
            vocab[forms[0]] = tuple(forms[1:])
    return vocab


#: Canonical skill name -> aliases (matched case-insensitively unless listed as ambiguous).
VOCABULARY: Mapping[str, tuple[str, ...]] = MappingProxyType(_parse(_VOCABULARY_TEXT))


def skill_key(form: str) -> str:
    """The lookup key of a skill form: case, spaces and hyphens do not distinguish skills."""
    return re.sub(r"[\s-]+", "", form.casefold())


_CANONICAL: Mapping[str, str] = {
    skill_key(form): canonical
    for canonical, aliases in VOCABULARY.items()
    for form in (canonical, *aliases)
}


def _form_pattern(form: str) -> str:
    body = re.escape(form).replace(r"\ ", r"[\s-]+").replace(r"\-", r"[\s-]?")
    if form in _STRICT:
        body = rf"(?<![-&'])(?<!Series ){body}(?![-&'])"
    return body if form in _CASE_SENSITIVE else f"(?i:{body})"


def _build_pattern() -> re.Pattern[str]:
    forms = sorted(
        {form for canonical, aliases in VOCABULARY.items() for form in (canonical, *aliases)},
        key=lambda form: (-len(form), form),
    )
    # Longest forms first, so "C++" wins over "C" and "React Native" over "React" at the same
    # position; the outer look-arounds make every form a whole term (".js" of "Node.js" and
    # the "C" of "C#" are not terms of their own).
    alternatives = "|".join(_form_pattern(form) for form in forms)
    return re.compile(rf"(?<![\w.+#@])(?:{alternatives})(?![\w+#]|\.\w)")


_SKILL_RE = _build_pattern()


class SkillMention(NamedTuple):
    """One occurrence of a vocabulary skill in a text."""

    skill: str
    start: int
    end: int


def iter_skill_mentions(text: str) -> Iterator[SkillMention]:
    """Every non-overlapping vocabulary skill mention in ``text``, left to right."""
    for found in _SKILL_RE.finditer(text):
        yield SkillMention(_CANONICAL[skill_key(found.group())], found.start(), found.end())


def count_skills(text: str) -> dict[str, int]:
    """How often each vocabulary skill is mentioned, in order of first mention."""
    counts: dict[str, int] = {}
    for mention in iter_skill_mentions(text):
        counts[mention.skill] = counts.get(mention.skill, 0) + 1
    return counts


def find_skills(text: str) -> list[str]:
    """The distinct vocabulary skills mentioned in ``text``, in order of first mention."""
    return list(count_skills(text))


def canonical_skill(name: str) -> str | None:
    """The canonical name of a skill written as ``name`` (any alias, any case), if known."""
    return _CANONICAL.get(skill_key(" ".join(name.split())))
