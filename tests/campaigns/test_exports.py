import actors.campaigns


def test_public_face_is_pinned():
    assert sorted(actors.campaigns.__all__) == [
        "CAMPAIGN_UPDATED", "CampaignActor", "CampaignDefinition", "CampaignDeps", "CampaignError", "CampaignInvalid",
        "CampaignRefused", "CampaignService", "CampaignServiceDeps", "Cancel", "DAYS", "Halt", "InboundTap", "Pacing",
        "Pause", "RecipientInput", "Schedule", "SessionPacer", "Start", "build_campaign", "parse_csv", "placeholders",
        "progress_payload", "render", "table",
    ]
    for name in actors.campaigns.__all__:
        assert getattr(actors.campaigns, name) is not None


def test_errors_share_one_root():
    from actors.campaigns import CampaignError, CampaignInvalid

    assert issubclass(CampaignInvalid, CampaignError) and issubclass(CampaignInvalid, ValueError)
    assert CampaignInvalid("recipients[2].phone", "empty").field == "recipients[2].phone"
