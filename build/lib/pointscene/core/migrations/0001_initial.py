"""Tenancy moves from the jobs app to core: the same tables (jobs_instance, jobs_resource, jobs_apiclient and their
many-to-many tables) under a new owner. Only Django's model state changes; the database keeps every row and
constraint. The content types are renamed, so permissions granted on these models and admin history stay attached.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models




def move_content_types(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="jobs", model__in=MODELS).update(app_label="core")


def move_content_types_back(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="core", model__in=MODELS).update(app_label="jobs")


MODELS = ["instance", "resource", "apiclient"]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_APPLICATION_MODEL),
        ("contenttypes", "0002_remove_content_type_name"),
        ("jobs", "0006_jobhistory_log_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
            migrations.CreateModel(
                name='Instance',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=200)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('members', models.ManyToManyField(blank=True, help_text='Users who may act on this instance with a password-grant token.', related_name='instances', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'db_table': 'jobs_instance',
                },
            ),
            migrations.CreateModel(
                name='ApiClient',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('can_create_instances', models.BooleanField(default=False, help_text='May ask for the instance-create scope.')),
                    ('application', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='api_client', to=settings.OAUTH2_PROVIDER_APPLICATION_MODEL)),
                    ('instances', models.ManyToManyField(blank=True, related_name='api_clients', to='core.instance')),
                ],
                options={
                    'db_table': 'jobs_apiclient',
                },
            ),
            migrations.CreateModel(
                name='Resource',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=200)),
                    ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                    ('instance', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='resources', to='core.instance')),
                ],
                options={
                    'db_table': 'jobs_resource',
                },
            ),
            ],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
