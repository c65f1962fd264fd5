"""CDK entry point: `cdk synth` and `cdk deploy` build one RouterStack from the context in cdk.json."""

from aws_cdk import App

from infra.stack import build_app


def main() -> None:
    app = App()
    build_app(app)
    app.synth()


if __name__ == "__main__":
    main()
